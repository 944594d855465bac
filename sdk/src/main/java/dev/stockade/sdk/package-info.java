/**
 * Stockade's Java SDK: create isolated sandboxes on a Stockade server, run commands and stateful
 * Python cells ({@link dev.stockade.sdk.Sandbox#runCode}) in them and move files in and out, with
 * the shapes of the E2B SDKs.
 *
 * <p>Start at {@link dev.stockade.sdk.StockadeClient}. Everything public lives in this package and
 * is pinned by a test ({@code sdk/api/stockade-sdk.api}); {@code dev.stockade.sdk.internal} is not
 * an API and changes without notice.
 */
package dev.stockade.sdk;
