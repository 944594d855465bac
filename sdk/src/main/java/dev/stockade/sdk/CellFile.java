package dev.stockade.sdk;

/**
 * A file under /home/user that a cell created or changed (Stockade extension), so that a client can
 * fetch the chart or CSV it just made with {@link Filesystem#readBytes(String)}.
 *
 * @param name the file's name
 * @param path its absolute path inside the sandbox
 * @param size its size in bytes when the cell ended
 */
public record CellFile(String name, String path, long size) {}
