package io.choir.jepsen;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.History;
import io.choir.checker.Invocation;
import io.choir.checker.OpType;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;

/**
 * SetChecker is Jepsen's set checker for {@link SetWorkload}: the adds are the history's writes under
 * the prefix (element = value), the reads the successful {@link SetRead}s, each checked on its own:
 *
 * <ul>
 *   <li><b>lost</b>: an acknowledged (ok) add missing from the read;
 *   <li><b>unexpected</b>: an element read that no one ever tried to add (from nowhere, or garbage: -1);
 *   <li><b>duplicated</b>: an element read more than once;
 *   <li><b>revived</b>: an element whose add failed definitely. Jepsen counts every invoked add as
 *       attempted and so lets a failed one appear; here a {@code fail} is the client's promise that the
 *       store did not execute the add (unavailable, busy), so an element that shows up anyway breaks that
 *       promise and is an error of its own;
 *   <li><b>recovered</b>: an add of unknown outcome (info) that is present; allowed, as is its absence.
 * </ul>
 *
 * The reads are the linearizable read through the primary and the sequential reads of each replica,
 * which the harness takes only once every replica has applied everything committed, so each must hold
 * every acknowledged add too (a replica that lost one has diverged). Verdict: INVALID when any read has
 * an anomaly; else UNKNOWN when no linearizable read succeeded (a missing final read proves nothing);
 * else VALID.
 */
public final class SetChecker {
  /** MAX_LISTED caps every list of elements in results.json (the counts are exact). */
  static final int MAX_LISTED = 50;

  private SetChecker() {}

  /**
   * ReadResult is one read's check.
   *
   * @param read the read
   * @param lost acknowledged adds missing from it
   * @param unexpected elements read that were never added
   * @param duplicated elements read more than once
   * @param revived elements read whose add failed definitely
   * @param recovered elements read whose add was info
   */
  public record ReadResult(SetRead read, SortedSet<Long> lost, SortedSet<Long> unexpected, SortedSet<Long> duplicated,
      SortedSet<Long> revived, SortedSet<Long> recovered) {
    /** valid tells whether the read has no anomaly. */
    public boolean valid() {
      return lost.isEmpty() && unexpected.isEmpty() && duplicated.isEmpty() && revived.isEmpty();
    }
  }

  /**
   * Result of the check.
   *
   * @param verdict VALID, INVALID or UNKNOWN (no successful linearizable read)
   * @param attempted adds invoked
   * @param acknowledged adds that completed ok
   * @param failed adds that failed definitely
   * @param indeterminate adds of unknown outcome
   * @param reads one entry per successful read, linearizable first
   * @param failedReads final read attempts that failed, ended of unknown outcome or never completed (none learnt anything)
   */
  public record Result(Verdict verdict, int attempted, int acknowledged, int failed, int indeterminate,
      List<ReadResult> reads, int failedReads) {
    /** Result copies the list. */
    public Result {
      reads = List.copyOf(reads);
    }

    /** summary is a one-line account for the report. */
    public String summary() {
      if (reads.isEmpty()) {
        return "no final read succeeded (" + failedReads + " failed attempts): " + acknowledged
            + " acknowledged adds unchecked";
      }
      ReadResult main = reads.get(0);
      StringBuilder sb = new StringBuilder();
      sb.append(acknowledged).append(" of ").append(attempted).append(" adds acknowledged; ")
          .append(main.read().consistency()).append(" read of ").append(main.read().elements().size())
          .append(" elements: ").append(main.lost().size()).append(" lost, ").append(main.unexpected().size())
          .append(" unexpected, ").append(main.duplicated().size()).append(" duplicated, ")
          .append(main.revived().size()).append(" revived, ").append(main.recovered().size())
          .append(" recovered of ").append(indeterminate).append(" info");
      long bad = reads.stream().skip(1).filter(r -> !r.valid()).count();
      if (reads.size() > 1) {
        sb.append("; ").append(reads.size() - 1).append(" replica reads, ").append(bad).append(" with anomalies");
      }
      return sb.toString();
    }

    /** toJson is the checker's entry in results.json, lists capped at {@link #MAX_LISTED}. */
    public ObjectNode toJson() {
      ObjectNode o = Json.MAPPER.createObjectNode();
      o.set("valid", Results.valid(verdict));
      o.put("summary", summary());
      o.put("attempted", attempted);
      o.put("acknowledged", acknowledged);
      o.put("failed", failed);
      o.put("indeterminate", indeterminate);
      o.put("failedReads", failedReads);
      ArrayNode arr = o.putArray("reads");
      for (ReadResult r : reads) {
        ObjectNode n = arr.addObject();
        n.put("valid", r.valid());
        n.put("consistency", r.read().consistency());
        n.put("node", r.read().node());
        n.put("process", r.read().process());
        n.put("elements", r.read().elements().size());
        n.put("pages", r.read().pages());
        n.put("ok", r.read().elements().stream().distinct().filter(e -> !r.unexpected().contains(e)).count());
        list(n, "lost", r.lost());
        list(n, "unexpected", r.unexpected());
        list(n, "duplicated", r.duplicated());
        list(n, "revived", r.revived());
        list(n, "recovered", r.recovered());
      }
      return o;
    }

    private static void list(ObjectNode n, String name, SortedSet<Long> elements) {
      n.put(name + "Count", elements.size());
      ArrayNode a = n.putArray(name);
      elements.stream().limit(MAX_LISTED).forEach(a::add);
    }
  }

  /** check checks the adds under {@code prefix} in {@code history} against the final {@code reads}. */
  public static Result check(History history, List<SetRead> reads, String prefix) {
    Map<Long, Outcome> adds = new HashMap<>();
    int ok = 0;
    int fail = 0;
    int info = 0;
    for (Invocation inv : history.invocations()) {
      if (inv.op().type() != OpType.WRITE || !inv.op().key().startsWith(prefix)) {
        continue;
      }
      Outcome previous = adds.put(inv.op().value(), inv.outcome());
      if (previous != null) {
        throw new IllegalArgumentException("element " + inv.op().value() + " was added twice: the workload must"
            + " add each element once");
      }
      switch (inv.outcome()) {
        case OK -> ok++;
        case FAIL -> fail++;
        case INFO -> info++;
        default -> throw new AssertionError(inv.outcome());
      }
    }
    List<ReadResult> checked = new ArrayList<>();
    int failedReads = 0;
    boolean linearizable = false;
    for (SetRead r : reads) {
      if (r.outcome() != Outcome.OK) {
        failedReads++;
        continue;
      }
      ReadResult c = checkRead(adds, r);
      if (r.isLinearizable()) {
        linearizable = true;
        checked.add(0, c); // the last linearizable read leads the report
      } else {
        checked.add(c);
      }
    }
    Verdict verdict = checked.stream().anyMatch(c -> !c.valid()) ? Verdict.INVALID
        : linearizable ? Verdict.VALID : Verdict.UNKNOWN;
    return new Result(verdict, adds.size(), ok, fail, info, checked, failedReads);
  }

  private static ReadResult checkRead(Map<Long, Outcome> adds, SetRead r) {
    SortedSet<Long> seen = new TreeSet<>();
    SortedSet<Long> duplicated = new TreeSet<>();
    SortedSet<Long> unexpected = new TreeSet<>();
    SortedSet<Long> revived = new TreeSet<>();
    SortedSet<Long> recovered = new TreeSet<>();
    for (long e : r.elements()) {
      if (!seen.add(e)) {
        duplicated.add(e);
      }
      Outcome o = adds.get(e);
      if (o == null) {
        unexpected.add(e);
      } else if (o == Outcome.FAIL) {
        revived.add(e);
      } else if (o == Outcome.INFO) {
        recovered.add(e);
      }
    }
    SortedSet<Long> lost = new TreeSet<>();
    adds.forEach((e, o) -> {
      if (o == Outcome.OK && !seen.contains(e)) {
        lost.add(e);
      }
    });
    return new ReadResult(r, lost, unexpected, duplicated, revived, recovered);
  }
}
