package dev.stockade.server.audit;

import java.time.Instant;

/**
 * One line of the audit log: who (tenant, key id, and how they proved it), what (an action, the
 * sandbox, a target such as a path or a context id, and a detail such as a size or a digest),
 * when, and the outcome. Never a secret value, a key, a command line, code or file contents: a
 * command or a cell is named by its SHA-256 prefix and length, so an operator can match it against
 * what a tenant shows without the log holding it.
 *
 * @param seq    the entry's place in the log (assigned by the store; 0 before it is written)
 * @param via    api-key, sandbox-token or none (a refused attempt without a valid credential)
 * @param status the HTTP status of the answer
 */
public record AuditEntry(long seq, Instant time, String tenant, String keyId, String via, String remote,
                         String action, String sandbox, String target, int status, String outcome, String detail,
                         long durationMs) {}
