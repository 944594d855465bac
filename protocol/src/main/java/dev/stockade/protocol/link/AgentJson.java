package dev.stockade.protocol.link;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.AgentInfo;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.protocol.FileChange;
import dev.stockade.protocol.FileMetadata;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.ProcessInfo;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The agent protocol's JSON codec: the bounded parsers, requests, and the validated reading of every
 * answer into the protocol's records. A field that is missing, of the wrong type or out of range is a PROTOCOL
 * error naming the field; nothing the agent sends reaches the server unchecked.
 */
final class AgentJson {
    static final ObjectMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
                    .streamReadConstraints(StreamReadConstraints.builder()
                            .maxNestingDepth(16)
                            .maxNumberLength(32)
                            .maxStringLength(Frame.MAX_PAYLOAD)
                            .maxNameLength(256)
                            .maxDocumentLength(Frame.MAX_PAYLOAD)
                            .build())
                    .build())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    /**
     * Cell events (results carry arbitrary JSON and large images): deeper nesting and, for events
     * sent as "large", documents up to {@link #MAX_CELL_EVENT}; still bounded.
     */
    static final int MAX_CELL_EVENT = 64 << 20;
    static final ObjectMapper CELL_MAPPER = JsonMapper.builder(JsonFactory.builder()
                    .streamReadConstraints(StreamReadConstraints.builder()
                            .maxNestingDepth(64)
                            .maxNumberLength(64)
                            .maxStringLength(MAX_CELL_EVENT)
                            .maxNameLength(4096)
                            .maxDocumentLength(MAX_CELL_EVENT)
                            .build())
                    .build())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();
    /** Most files one cell's end may list (the agent's scan stops at 10 000 entries). */
    static final int MAX_FILES = 10_000;
    /** Longest error value or traceback taken from the agent (the kernel cuts at 256 Ki characters). */
    static final int MAX_ERROR_TEXT = 1 << 20;

    static final Set<String> ENTRY_TYPES = Set.of("file", "dir", "symlink", "other");

    /** Longest text field taken from the agent (error messages, reasons, names); longer is cut. */
    static final int MAX_TEXT = 4096;
    /** Longest path taken from the agent: PATH_MAX, with room for multi-byte characters. */
    static final int MAX_PATH = 16384;

    private AgentJson() {}

    static ObjectNode request(String op) {
        return MAPPER.createObjectNode().put("op", op);
    }

    static byte[] write(ObjectNode node) {
        try {
            return MAPPER.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new AgentException(AgentException.Code.INTERNAL, "cannot encode an agent request: " + e.getMessage(), e);
        }
    }

    /** Throws the agent's {"error": {"code", "message"}} answer as an AgentException. */
    static void throwIfError(ObjectNode answer) {
        JsonNode error = answer.get("error");
        if (error == null) {
            return;
        }
        if (!(error instanceof ObjectNode object)) {
            throw protocol("error is not an object");
        }
        String code = string(object, "code", 64, false);
        String message = text(object, "message");
        throw new AgentException(code(code), message);
    }

    static AgentException.Code code(String agentCode) {
        return switch (agentCode) {
            case "not_found" -> AgentException.Code.NOT_FOUND;
            case "already_exists" -> AgentException.Code.ALREADY_EXISTS;
            case "invalid_argument" -> AgentException.Code.INVALID_ARGUMENT;
            case "permission_denied" -> AgentException.Code.PERMISSION_DENIED;
            case "not_a_directory" -> AgentException.Code.NOT_A_DIRECTORY;
            case "is_a_directory" -> AgentException.Code.IS_A_DIRECTORY;
            case "no_space" -> AgentException.Code.NO_SPACE;
            case "resource_exhausted" -> AgentException.Code.RESOURCE_EXHAUSTED;
            case "process_not_found" -> AgentException.Code.PROCESS_NOT_FOUND;
            default -> AgentException.Code.INTERNAL;
        };
    }

    static AgentInfo agentInfo(ObjectNode node) {
        return new AgentInfo(string(node, "version", 64, false), positiveInt(node, "pid"));
    }

    static AgentEvent.Ended ended(ObjectNode node) {
        int exitCode = integer(node, "exitCode", -1, 255);
        String signal = string(node, "signal", 32, true);
        Outcome outcome = outcome(node, Outcome.PROCESS, "outcome");
        return new AgentEvent.Ended(exitCode, signal, outcome, text(node, "reason"));
    }

    /** The event's outcome, which must be one of {@code allowed}. */
    private static Outcome outcome(ObjectNode node, Set<Outcome> allowed, String what) {
        String name = string(node, "outcome", 32, false);
        Outcome outcome = Outcome.fromWire(name);
        if (!allowed.contains(outcome)) {
            throw protocol(what + " '" + name + "' is not one of "
                    + allowed.stream().map(Outcome::wireName).sorted().toList());
        }
        return outcome;
    }

    static EntryInfo entry(JsonNode node) {
        if (!(node instanceof ObjectNode object)) {
            throw protocol("entry is not an object");
        }
        String type = string(object, "type", 16, false);
        if (!ENTRY_TYPES.contains(type)) {
            throw protocol("entry type '" + type + "' is not one of " + ENTRY_TYPES);
        }
        long size = longValue(object, "size");
        if (size < 0) {
            throw protocol("entry size is negative");
        }
        return new EntryInfo(
                string(object, "name", MAX_PATH, false),
                path(object, "path", false),
                type,
                size,
                integer(object, "mode", 0, 07777),
                string(object, "permissions", 16, false),
                string(object, "owner", 256, false),
                string(object, "group", 256, false),
                longValue(object, "modifiedMillis"),
                path(object, "symlinkTarget", true),
                metadata(object));
    }

    /**
     * An entry's file metadata: string pairs the agent bounds to {@link FileMetadata#MAX_TOTAL_BYTES}
     * (code in the sandbox may set any attribute; the agent leaves out what would pass the bound).
     */
    static Map<String, String> metadata(ObjectNode entry) {
        JsonNode node = entry.get("metadata");
        if (node == null || node.isNull()) {
            return Map.of();
        }
        if (!(node instanceof ObjectNode object)) {
            throw protocol("entry metadata is not an object");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        int total = 0;
        for (var field : object.properties()) {
            if (!field.getValue().isTextual() || field.getKey().isEmpty()) {
                throw protocol("entry metadata '" + field.getKey() + "' is not a non-empty key with a string value");
            }
            total += FileMetadata.cost(field.getKey(), field.getValue().textValue());
            if (total > FileMetadata.MAX_TOTAL_BYTES) {
                throw protocol("entry metadata is larger than " + FileMetadata.MAX_TOTAL_BYTES + " bytes");
            }
            metadata.put(field.getKey(), field.getValue().textValue());
        }
        return metadata;
    }

    static ProcessInfo processInfo(JsonNode node) {
        if (!(node instanceof ObjectNode object)) {
            throw protocol("process is not an object");
        }
        JsonNode argvNode = object.get("argv");
        if (argvNode == null || !argvNode.isArray()) {
            throw protocol("process argv is not an array");
        }
        List<String> argv = new ArrayList<>(argvNode.size());
        for (JsonNode arg : argvNode) {
            if (!arg.isTextual()) {
                throw protocol("process argv holds a non-string");
            }
            argv.add(arg.textValue());
        }
        JsonNode envNode = object.get("env");
        if (envNode == null || !envNode.isObject()) {
            throw protocol("process env is not an object");
        }
        Map<String, String> env = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : envNode.properties()) {
            if (!e.getValue().isTextual()) {
                throw protocol("process env value of " + e.getKey() + " is not a string");
            }
            env.put(e.getKey(), e.getValue().textValue());
        }
        return new ProcessInfo(positiveInt(object, "pid"), Collections.unmodifiableList(argv),
                Collections.unmodifiableMap(env), path(object, "cwd", false), string(object, "tag", MAX_TEXT, true));
    }

    static String string(ObjectNode node, String field, int maxLength, boolean nullable) {
        JsonNode value = node.get(field);
        if (value == null || value.isNull()) {
            if (nullable) {
                return null;
            }
            throw protocol("field '" + field + "' is missing");
        }
        if (!value.isTextual()) {
            throw protocol("field '" + field + "' is not a string");
        }
        String text = value.textValue();
        if (text.length() > maxLength) {
            throw protocol("field '" + field + "' is longer than " + maxLength + " characters");
        }
        return text;
    }

    /** A message or reason for a person: cut to {@link #MAX_TEXT}, control characters replaced. */
    static String text(ObjectNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || !value.isTextual()) {
            throw protocol("field '" + field + "' is not a string");
        }
        String text = value.textValue();
        if (text.length() > MAX_TEXT) {
            text = text.substring(0, MAX_TEXT) + "...";
        }
        StringBuilder clean = new StringBuilder(text.length());
        text.codePoints().forEach(c -> clean.appendCodePoint(Character.isISOControl(c) ? '?' : c));
        return clean.toString();
    }

    static String path(ObjectNode node, String field, boolean nullable) {
        String path = string(node, field, MAX_PATH, nullable);
        if (path != null && (!path.startsWith("/") || path.indexOf('\0') >= 0)) {
            throw protocol("field '" + field + "' is not an absolute path");
        }
        return path;
    }

    static int integer(ObjectNode node, String field, int min, int max) {
        JsonNode value = node.get(field);
        if (value == null || !value.isIntegralNumber() || !value.canConvertToInt()
                || value.intValue() < min || value.intValue() > max) {
            throw protocol("field '" + field + "' is not an integer in " + min + ".." + max);
        }
        return value.intValue();
    }

    static int positiveInt(ObjectNode node, String field) {
        return integer(node, field, 1, Integer.MAX_VALUE);
    }

    static long longValue(ObjectNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || !value.isIntegralNumber() || !value.canConvertToLong()) {
            throw protocol("field '" + field + "' is not an integer");
        }
        return value.longValue();
    }

    static boolean bool(ObjectNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || !value.isBoolean()) {
            throw protocol("field '" + field + "' is not a boolean");
        }
        return value.booleanValue();
    }

    static ContextInfo contextInfo(JsonNode node) {
        if (!(node instanceof ObjectNode object)) {
            throw protocol("context is not an object");
        }
        String user = string(object, "user", 16, false);
        if (!user.equals("user") && !user.equals("root")) {
            throw protocol("context user '" + user + "' is neither user nor root");
        }
        return new ContextInfo(string(object, "id", 64, false), string(object, "language", 32, false),
                path(object, "cwd", false), user);
    }

    /** A J frame of a cell stream (not "large", not the error answer): result, error or end. */
    static CellEvent cellEvent(ObjectNode node) {
        String ev = string(node, "ev", 16, false);
        return switch (ev) {
            case "result" -> {
                JsonNode data = node.get("data");
                if (!(data instanceof ObjectNode object)) {
                    throw protocol("result data is not an object");
                }
                Map<String, Object> map = new LinkedHashMap<>();
                for (Map.Entry<String, JsonNode> e : object.properties()) {
                    map.put(e.getKey(), plain(e.getValue()));
                }
                yield new CellEvent.Result(Collections.unmodifiableMap(map), bool(node, "isMainResult"));
            }
            case "error" -> new CellEvent.Error(cut(string(node, "name", MAX_CELL_EVENT, false), 256),
                    cut(string(node, "value", MAX_CELL_EVENT, false), MAX_ERROR_TEXT),
                    cut(string(node, "traceback", MAX_CELL_EVENT, false), MAX_ERROR_TEXT));
            case "end" -> {
                Outcome outcome = outcome(node, Outcome.CELL, "cell outcome");
                JsonNode filesNode = node.get("files");
                if (filesNode == null || !filesNode.isArray()) {
                    throw protocol("end files is not an array");
                }
                if (filesNode.size() > MAX_FILES) {
                    throw protocol("more than " + MAX_FILES + " files in a cell's end");
                }
                List<FileChange> files = new ArrayList<>(filesNode.size());
                for (JsonNode f : filesNode) {
                    if (!(f instanceof ObjectNode file)) {
                        throw protocol("a file change is not an object");
                    }
                    long size = longValue(file, "size");
                    if (size < 0) {
                        throw protocol("file size is negative");
                    }
                    files.add(new FileChange(path(file, "path", false), string(file, "name", MAX_PATH, false), size));
                }
                yield new CellEvent.End(integer(node, "executionCount", 0, Integer.MAX_VALUE), outcome,
                        text(node, "reason"), bool(node, "stateLost"), Collections.unmodifiableList(files));
            }
            default -> throw protocol("unexpected event in a cell stream: " + ev);
        };
    }

    /** A JSON value as plain Java: Map (insertion-ordered), List, String, Long/BigInteger, Double, Boolean, null. */
    static Object plain(JsonNode node) {
        return switch (node.getNodeType()) {
            case OBJECT -> {
                Map<String, Object> map = new LinkedHashMap<>();
                for (Map.Entry<String, JsonNode> e : node.properties()) {
                    map.put(e.getKey(), plain(e.getValue()));
                }
                yield Collections.unmodifiableMap(map);
            }
            case ARRAY -> {
                List<Object> list = new ArrayList<>(node.size());
                for (JsonNode item : node) {
                    list.add(plain(item));
                }
                yield Collections.unmodifiableList(list);
            }
            case STRING -> node.textValue();
            case NUMBER -> node.isIntegralNumber()
                    ? (node.canConvertToLong() ? (Object) node.longValue() : node.bigIntegerValue())
                    : (Object) node.doubleValue();
            case BOOLEAN -> node.booleanValue();
            default -> null;
        };
    }

    private static String cut(String text, int max) {
        return text.length() <= max ? text : text.substring(0, max) + "...";
    }

    static AgentException protocol(String what) {
        return new AgentException(AgentException.Code.PROTOCOL, "the agent sent an invalid answer: " + what);
    }
}
