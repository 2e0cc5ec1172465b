/**
 * io.choir.checker decides whether a recorded history of Choir client operations is linearizable, so
 * that the deterministic simulator and the failure-injection harness share one trusted oracle.
 *
 * <h2>Model</h2>
 *
 * <p>A {@link io.choir.checker.History} is a sequence of {@link io.choir.checker.Event}s in real-time
 * order: a process invokes an {@link io.choir.checker.Operation} (read, write or compare-and-set on one
 * key), then the same process completes it with
 *
 * <ul>
 *   <li>{@code ok}: it took effect (a read carries the value it returned, {@code null} = absent);
 *   <li>{@code fail}: it definitely did not take effect, so it is dropped;
 *   <li>{@code info}: nobody knows. It may take effect at any moment after its invocation, or never, so it
 *       stays open to the end of the history (as in Knossos). An info read constrains nothing and is
 *       dropped. The process never completes anything again; a harness continues with a fresh process id.
 * </ul>
 *
 * An invocation that never completes is treated as info. A harness that drives the Choir client records
 * an operation that ended in an exception through {@link io.choir.checker.ClientOutcomes}: fail only for
 * the exceptions the client documents as "not executed" (and CAS_FAILED), info for every other one, so
 * that a false "not executed" becomes a violation instead of a dropped operation. The order of events, not their timestamps,
 * defines real time: operation A precedes B when A's completion comes before B's invocation.
 *
 * <p>Each key is a register ({@link io.choir.checker.RegisterModel}): absent initially (configurable), a
 * read must return the current value, a write sets it, an ok CAS must find the expected value. Keys are
 * independent, so the history is split by key and each key is checked on its own
 * (P-compositionality); other sequential specifications can be plugged in through
 * {@link io.choir.checker.Model}.
 *
 * <h2>Algorithm</h2>
 *
 * <p>The search is Wing and Gong's (1993, "Testing and verifying concurrent objects") with the
 * memoization of Lowe (2017, "Testing for linearizability"), in the linked-list form used by Porcupine
 * (github.com/anishathalye/porcupine): configurations (set of linearized operations, model state) already
 * shown to fail are never explored again. Open (info) operations get their return at the end of the
 * history, as in Knossos, and need not be linearized at all; a failed configuration also rules out the
 * same configuration with more open operations linearized.
 *
 * <h2>Verdicts</h2>
 *
 * <p>{@link io.choir.checker.Verdict#VALID} means every key was proved linearizable. A search that runs
 * past the deadline (or its memory budget) gives {@link io.choir.checker.Verdict#UNKNOWN}, never VALID.
 * {@link io.choir.checker.Verdict#INVALID} comes with an {@link io.choir.checker.Anomaly}: the first
 * operation that no linearization can place before its completion, the operations concurrent with it and
 * the model state(s) just before it.
 *
 * <h2>Example</h2>
 *
 * <pre>{@code
 * History.Builder h = History.builder();
 * h.invokeWrite(1, "k1", 3, t0).ok(1, t1);          // p1 wrote 3
 * h.invokeRead(2, "k1", t2).ok(2, 3L, t3);          // p2 read 3
 * h.invokeCas(3, "k1", 3L, 4, t4).info(3, t5);      // p3's CAS 3->4 timed out: may or may not happen
 * h.invokeRead(4, "k1", t6).ok(4, null, t7);        // p4 read "absent": impossible after the write
 *
 * CheckResult result = Checker.check(h.build(), Duration.ofSeconds(10));
 * if (result.verdict() != Verdict.VALID) {
 *   System.err.println(result);                     // per-key verdicts and the anomaly, human-readable
 *   Files.writeString(report, result.toJson());     // or as JSON for a test report
 * }
 * }</pre>
 *
 * <p>Histories can be saved and replayed as JSON lines: {@link io.choir.checker.History#writeJsonLines}
 * and {@link io.choir.checker.History#readJsonLines}. For a simulator, inject the clock with
 * {@link io.choir.checker.Checker#withClock} to keep runs reproducible.
 */
package io.choir.checker;
