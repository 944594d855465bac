package dev.stockade.sdk;

import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * One thing a cell displayed, like E2B's {@code Result}: the value of its last expression (the
 * main result), a {@code display(...)} call, or a matplotlib figure. Each representation the object
 * offered is set; the others are null. Images and PDFs are base64, as on the wire;
 * {@link #pngBytes()} and friends decode them.
 *
 * @param text plain text ({@code repr} of the value)
 * @param html HTML, e.g. a pandas DataFrame's table
 * @param markdown Markdown
 * @param svg an SVG image
 * @param png a PNG image, base64
 * @param jpeg a JPEG image, base64
 * @param pdf a PDF document, base64
 * @param latex LaTeX
 * @param json a JSON value, as JSON text
 * @param javascript JavaScript
 * @param chart a matplotlib figure's chart data, as JSON text in E2B's shape ({@code {"type": "line",
 *     "title": ..., "elements": [...]}}, docs/e2b-wire.md); null for anything else
 * @param isMainResult true for the cell's own value (Jupyter's {@code execute_result}), false for displays
 */
public record Result(
        String text,
        String html,
        String markdown,
        String svg,
        String png,
        String jpeg,
        String pdf,
        String latex,
        String json,
        String javascript,
        String chart,
        boolean isMainResult) {

    /** A result without chart data (the form before {@code chart} was added). */
    public Result(String text, String html, String markdown, String svg, String png, String jpeg, String pdf,
            String latex, String json, String javascript, boolean isMainResult) {
        this(text, html, markdown, svg, png, jpeg, pdf, latex, json, javascript, null, isMainResult);
    }

    /** The PNG image's bytes, or null when there is none. */
    public byte[] pngBytes() {
        return decode(png);
    }

    /** The JPEG image's bytes, or null when there is none. */
    public byte[] jpegBytes() {
        return decode(jpeg);
    }

    /** The PDF document's bytes, or null when there is none. */
    public byte[] pdfBytes() {
        return decode(pdf);
    }

    /** The representations present besides text (chart data is not one, as in E2B's SDKs), in E2B's order: html, markdown, svg, png, jpeg, pdf, latex, json, javascript. */
    public List<String> formats() {
        List<String> out = new ArrayList<>();
        if (html != null) out.add("html");
        if (markdown != null) out.add("markdown");
        if (svg != null) out.add("svg");
        if (png != null) out.add("png");
        if (jpeg != null) out.add("jpeg");
        if (pdf != null) out.add("pdf");
        if (latex != null) out.add("latex");
        if (json != null) out.add("json");
        if (javascript != null) out.add("javascript");
        return List.copyOf(out);
    }

    private static byte[] decode(String base64) {
        return base64 == null ? null : Base64.getMimeDecoder().decode(base64);
    }
}
