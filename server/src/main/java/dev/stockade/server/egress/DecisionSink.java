package dev.stockade.server.egress;

/** Where decisions go: a sandbox's log and the server's counters. Must not block for long. */
@FunctionalInterface
public interface DecisionSink {
    void record(Decision decision);
}
