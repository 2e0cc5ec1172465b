package io.choir.jepsen;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.choir.checker.Outcome;
import io.choir.checker.Verdict;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * WatchChecker checks what the watchers of a {@link WatchWorkload} delivered against the writes that
 * were attempted and the final state (pure: data in, verdict out). Every write puts a value no other
 * write puts, so an event names its write. For each watcher, over its delivered range (its start
 * revision to its last delivered revision):
 *
 * <ul>
 *   <li>revisions strictly increase (the workload writes one key per write, so a revision holds one
 *       event): a repeat is a <em>duplicate</em>, a lower one <em>out of order</em>; none below the start;
 *   <li>every event is in the watcher's key range, a put (the workload deletes nothing), of a value some
 *       attempted write put to that key; a write that failed definitely (the client's "not executed")
 *       must not appear (<em>revived</em>); an acknowledged one only at the revision it was acknowledged
 *       with;
 *   <li>every acknowledged write in the key range whose revision is inside the delivered range appears
 *       (else a <em>gap</em>);
 *   <li>any two watchers agree exactly on the keys both cover over the revisions both delivered: so a
 *       write of unknown outcome appears in all of them or in none;
 *   <li>a watcher that did not end with an error reached the final read's version of every key it
 *       covers, and its last event of that key is the final value at that version.
 * </ul>
 *
 * Valid when nothing is wrong; unknown when the final read is missing or every watcher ended early.
 */
public final class WatchChecker {
  private WatchChecker() {}

  /** Write is one attempted put: its key, unique value, outcome, and revision (-1 unless ok). */
  public record Write(String key, long value, Outcome outcome, long revision) {}

  /** Event is one delivered change. */
  public record Event(long revision, String key, boolean delete, String value) {}

  /** Watcher is one watch's record: its range, first revision asked for, events, and error (or null). */
  public record Watcher(String name, String range, boolean prefix, long start, List<Event> events, String error) {
    boolean covers(String key) {
      return prefix ? key.startsWith(range) : key.equals(range);
    }

    long last() {
      return events.isEmpty() ? start - 1 : events.get(events.size() - 1).revision();
    }
  }

  /** Final is a key's state read (linearizably) after the heal: value null when absent. */
  public record Final(String key, String value, long version) {}

  /** Result of a check. */
  public record Result(Verdict verdict, List<String> problems, int events, int writes, int acknowledged,
      List<String> watchers) {
    /** toJson is the checker's entry in results.json. */
    public ObjectNode toJson() {
      ObjectNode o = Json.MAPPER.createObjectNode();
      o.set("valid", Results.valid(verdict));
      o.put("eventsChecked", events);
      o.put("writes", writes);
      o.put("acknowledgedWrites", acknowledged);
      ArrayNode w = o.putArray("watchers");
      watchers.forEach(w::add);
      ArrayNode p = o.putArray("problems");
      problems.stream().limit(50).forEach(p::add);
      o.put("problemCount", problems.size());
      return o;
    }

    /** summary is one line for the console. */
    public String summary() {
      return events + " events of " + watchers.size() + " watchers, " + acknowledged + "/" + writes
          + " writes acknowledged" + (problems.isEmpty() ? "" : "; " + problems.size() + " problems, first: "
          + problems.get(0));
    }
  }

  /** check checks {@code watchers} against {@code writes} and {@code finals} (null: no final read). */
  public static Result check(List<Write> writes, List<Watcher> watchers, List<Final> finals) {
    List<String> problems = new ArrayList<>();
    Map<Long, Write> byValue = new HashMap<>();
    int acked = 0;
    for (Write w : writes) {
      if (byValue.put(w.value(), w) != null) {
        problems.add("value " + w.value() + " was written twice: the workload writes each value once");
      }
      if (w.outcome() == Outcome.OK) {
        acked++;
      }
    }
    int events = 0;
    List<String> described = new ArrayList<>();
    for (Watcher w : watchers) {
      events += w.events().size();
      described.add(w.name() + " (" + (w.prefix() ? "prefix " : "key ") + w.range() + " from " + w.start() + "): "
          + w.events().size() + " events to revision " + w.last() + (w.error() == null ? "" : ", ended: " + w.error()));
      checkOne(w, byValue, writes, problems);
    }
    for (int i = 0; i < watchers.size(); i++) {
      for (int j = i + 1; j < watchers.size(); j++) {
        agree(watchers.get(i), watchers.get(j), problems);
      }
    }
    boolean anyComplete = false;
    if (finals != null) {
      for (Watcher w : watchers) {
        if (w.error() == null) {
          anyComplete = true;
          checkFinal(w, finals, problems);
        }
      }
    }
    Verdict v = !problems.isEmpty() ? Verdict.INVALID
        : finals == null || !anyComplete ? Verdict.UNKNOWN : Verdict.VALID;
    return new Result(v, problems, events, writes.size(), acked, described);
  }

  private static void checkOne(Watcher w, Map<Long, Write> byValue, List<Write> writes, List<String> problems) {
    long prev = w.start() - 1;
    Map<Long, Event> byRevision = new HashMap<>();
    for (Event e : w.events()) {
      String at = w.name() + ": event " + e.revision() + " " + e.key() + "=" + e.value();
      if (e.revision() < w.start()) {
        problems.add(at + " is below the watch's start " + w.start());
      } else if (e.revision() == prev) {
        problems.add(at + ": duplicate revision (one write per revision in this workload)");
      } else if (e.revision() < prev) {
        problems.add(at + ": out of order after revision " + prev);
      }
      prev = Math.max(prev, e.revision());
      byRevision.putIfAbsent(e.revision(), e);
      if (!w.covers(e.key())) {
        problems.add(at + " is outside the watched range");
      }
      if (e.delete()) {
        problems.add(at + ": a delete, but the workload deletes nothing");
        continue;
      }
      Write write;
      try {
        write = byValue.get(Long.parseLong(e.value()));
      } catch (NumberFormatException ex) {
        write = null;
      }
      if (write == null || !write.key().equals(e.key())) {
        problems.add(at + ": no write put that value to that key");
      } else if (write.outcome() == Outcome.FAIL) {
        problems.add(at + ": revived: its write failed definitely (not executed)");
      } else if (write.outcome() == Outcome.OK && write.revision() != e.revision()) {
        problems.add(at + ": its write was acknowledged at revision " + write.revision());
      }
    }
    long last = w.last();
    for (Write write : writes) {
      if (write.outcome() == Outcome.OK && w.covers(write.key()) && write.revision() >= w.start()
          && write.revision() <= last) {
        Event e = byRevision.get(write.revision());
        if (e == null || !e.key().equals(write.key()) || !Long.toString(write.value()).equals(e.value())) {
          problems.add(w.name() + ": gap: acknowledged write " + write.key() + "=" + write.value() + " at revision "
              + write.revision() + " is missing (delivered " + w.start() + ".." + last + ")");
        }
      }
    }
  }

  /** agree compares two watchers on the keys both cover, over the revisions both delivered. */
  static void agree(Watcher a, Watcher b, List<String> problems) {
    long lo = Math.max(a.start(), b.start());
    long hi = Math.min(a.last(), b.last());
    if (lo > hi) {
      return;
    }
    List<Event> ea = common(a, b, lo, hi);
    List<Event> eb = common(b, a, lo, hi);
    if (ea.equals(eb)) {
      return;
    }
    int i = 0;
    while (i < ea.size() && i < eb.size() && ea.get(i).equals(eb.get(i))) {
      i++;
    }
    problems.add(a.name() + " and " + b.name() + " disagree over revisions " + lo + ".." + hi + " at their event " + i
        + ": " + (i < ea.size() ? ea.get(i) : "nothing") + " vs " + (i < eb.size() ? eb.get(i) : "nothing"));
  }

  private static List<Event> common(Watcher self, Watcher other, long lo, long hi) {
    List<Event> out = new ArrayList<>();
    for (Event e : self.events()) {
      if (e.revision() >= lo && e.revision() <= hi && other.covers(e.key())) {
        out.add(e);
      }
    }
    return out;
  }

  private static void checkFinal(Watcher w, List<Final> finals, List<String> problems) {
    for (Final f : finals) {
      if (!w.covers(f.key()) || f.value() == null || f.version() < w.start()) {
        continue; // absent finals cannot occur here (nothing deletes); older versions are before the watch
      }
      if (w.last() < f.version()) {
        problems.add(w.name() + ": did not reach the final version " + f.version() + " of " + f.key()
            + " (last delivered " + w.last() + ")");
        continue;
      }
      Event lastOfKey = null;
      for (Event e : w.events()) {
        if (e.key().equals(f.key()) && e.revision() <= f.version()) {
          lastOfKey = e;
        }
      }
      if (lastOfKey == null || lastOfKey.revision() != f.version() || !f.value().equals(lastOfKey.value())) {
        problems.add(w.name() + ": final state " + f.key() + "=" + f.value() + " at version " + f.version()
            + " but its last event of that key is " + lastOfKey);
      }
    }
  }
}
