package io.choir.jepsen;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Periods turns the nemesis events of a history into the intervals during which each fault was active,
 * for the shaded bands of the plots and the timeline.
 */
public final class Periods {
  /**
   * Period is one fault active from {@code startNanos} to {@code endNanos}.
   *
   * @param fault the fault's name
   * @param nodes its targets
   * @param startNanos when it started
   * @param endNanos when it stopped (or the end of the history, if it never did)
   */
  public record Period(String fault, List<String> nodes, long startNanos, long endNanos) {
    /** label is e.g. {@code kill-primary n2}. */
    public String label() {
      return nodes.isEmpty() ? fault : fault + " " + String.join(",", nodes);
    }
  }

  private Periods() {}

  /**
   * of pairs every start with the next stop, error or heal of the same fault (a heal ends all of them);
   * a start never stopped lasts until {@code endNanos}.
   */
  public static List<Period> of(List<NemesisEvent> events, long endNanos) {
    Map<String, NemesisEvent> open = new LinkedHashMap<>();
    List<Period> out = new ArrayList<>();
    for (NemesisEvent e : events) {
      switch (e.phase()) {
        case NemesisEvent.START -> open.put(e.fault(), e);
        case NemesisEvent.STOP, NemesisEvent.ERROR -> {
          NemesisEvent s = open.remove(e.fault());
          if (s != null) {
            out.add(new Period(s.fault(), s.nodes(), s.timeNanos(), e.timeNanos()));
          }
        }
        case NemesisEvent.HEAL -> {
          for (NemesisEvent s : open.values()) {
            out.add(new Period(s.fault(), s.nodes(), s.timeNanos(), e.timeNanos()));
          }
          open.clear();
        }
        default -> {
          // unknown phases are kept in the history but draw nothing
        }
      }
    }
    for (NemesisEvent s : open.values()) {
      out.add(new Period(s.fault(), s.nodes(), s.timeNanos(), Math.max(s.timeNanos(), endNanos)));
    }
    out.sort((a, b) -> Long.compare(a.startNanos(), b.startNanos()));
    return out;
  }
}
