package io.choir.server.core;

import io.choir.proto.Entry;
import java.util.List;

/**
 * RecoveredState is what a replica reads back from storage when it starts: its view and last normal
 * view, whether it ran before (a restart, not a fresh replica), whether it must run the recovery
 * protocol first (buffered durability: it may have lost entries it acknowledged, VR Revisited 4.3),
 * whether it lost state it may have acknowledged and must catch up before it votes or acknowledges
 * again (mustCatchUp: the wipe of an interrupted state-transfer install, MetaKeys.CATCHING_UP), the
 * applied number and checksum of its data, the lowest op its log still holds, and the log entries above
 * the applied number (in op order).
 */
public record RecoveredState(long view, long lastNormalView, boolean restarted, boolean recovering,
    boolean mustCatchUp, long appliedOp, long checksum, long logFirstOp, List<Entry> unappliedLog) {
  public RecoveredState {
    unappliedLog = List.copyOf(unappliedLog);
    for (int i = 0; i < unappliedLog.size(); i++) {
      if (unappliedLog.get(i).getOp() != appliedOp + 1 + i) {
        throw new IllegalArgumentException("log above applied " + appliedOp + " is not consecutive at "
            + unappliedLog.get(i).getOp());
      }
    }
  }

  /** A replica restarted with fsync durability in view 0 (tests). */
  public RecoveredState(long view, long appliedOp, long checksum, List<Entry> unappliedLog) {
    this(view, view, false, false, false, appliedOp, checksum,
        unappliedLog.isEmpty() ? appliedOp + 1 : unappliedLog.get(0).getOp(), unappliedLog);
  }

  /**
   * This state in an epoch that starts at startView (DESIGN.md "Membership"): a replica restarted after
   * applying an EpochChange but before it recorded the new view resumes in the switch's state, the
   * epoch's first view with its log complete in it.
   */
  public RecoveredState inEpochFrom(long startView) {
    if (view >= startView) {
      return this;
    }
    return new RecoveredState(startView, startView, restarted, recovering, mustCatchUp, appliedOp, checksum, logFirstOp,
        unappliedLog);
  }

  /** A fresh replica with nothing on disk. */
  public static RecoveredState empty() {
    return new RecoveredState(0, 0, false, false, false, 0, 0, 1, List.of());
  }
}
