package dev.stockade.protocol;

/**
 * A regular file created or modified under the context user's home while a cell ran: its absolute
 * path (the sandbox's, for display and for fetching through the file API; never use it on the host),
 * its name (last path component) and its size in bytes after the cell.
 */
public record FileChange(String path, String name, long size) {}
