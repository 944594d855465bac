package dev.stockade.protocol.link;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One frame of the agent protocol (docs/agent-protocol.md): a 4-byte big-endian length N, then N
 * bytes of which the first is the type. Read and written only by {@link AgentConnection}.
 */
sealed interface Frame {
    byte JSON = 'J';
    byte STDOUT = '1';
    byte STDERR = '2';
    byte TERMINAL = 'T';
    byte DATA = 'B';

    /** Type byte plus at most 1 MiB of payload; both sides refuse anything larger. */
    int MAX_LENGTH = (1 << 20) + 1;
    int MAX_PAYLOAD = MAX_LENGTH - 1;

    /** A request, an answer, a process event or an error; always a JSON object. */
    record Json(ObjectNode body) implements Frame {}

    record Stdout(byte[] data) implements Frame {}

    record Stderr(byte[] data) implements Frame {}

    /** Output of a process that runs on a pseudo-terminal (started with a terminal size). */
    record Terminal(byte[] data) implements Frame {}

    /** File content or stdin; an empty one ends the data. */
    record Data(byte[] data) implements Frame {
        boolean isEnd() {
            return data.length == 0;
        }
    }
}
