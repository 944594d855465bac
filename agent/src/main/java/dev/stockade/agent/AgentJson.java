package dev.stockade.agent;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * JSON of the agent protocol: the bounded parser, and the validated reading of every answer into
 * the API's records. A field that is missing, of the wrong type or out of range is a PROTOCOL
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

    static final Set<String> OUTCOMES = Set.of("exited", "timeout", "oom_killed", "output_truncated", "signal", "killed");
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
        String outcome = string(node, "outcome", 32, false);
        if (!OUTCOMES.contains(outcome)) {
            throw protocol("outcome '" + outcome + "' is not one of " + OUTCOMES);
        }
        return new AgentEvent.Ended(exitCode, signal, outcome, text(node, "reason"));
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
                path(object, "symlinkTarget", true));
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

    static AgentException protocol(String what) {
        return new AgentException(AgentException.Code.PROTOCOL, "the agent sent an invalid answer: " + what);
    }
}
