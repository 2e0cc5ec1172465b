package io.choir.server.replica;

import io.choir.proto.Entry;
import io.choir.server.core.RecoveredState;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Recovery is what a replica does with its data folder at every start, before the core exists: the
 * server runs it, and so does every simulated start, so the simulator restarts replicas exactly as
 * production does.
 *
 * <ol>
 *   <li>Syncs whatever the storage holds: after a kill -9, writes that were never synced are still in
 *       the OS's page cache; this start builds on them (re-applies, acknowledges), so they must survive
 *       a later power loss.
 *   <li>Loads the state machine (which wipes an interrupted state-transfer install).
 *   <li>Checks the log: continuous from its first op to its last, starting no higher than applied + 1
 *       (no hole between the applied state and the log) and, when not empty, reaching the applied op
 *       (ops the state holds that the log lost). A hole means the data folder is not a state this
 *       replica ever had (an ordering bug, a lost file, a copied folder): starting on it could serve
 *       or vote with a log it does not hold, so the start is refused with what to do.
 *   <li>Reads the view, the last normal view and the markers: initialized (a restart, not a fresh
 *       replica), clean shutdown (nothing acknowledged can be lost), catching up (lost state it may
 *       have acknowledged).
 * </ol>
 */
public final class Recovery {
  private static final Logger log = LoggerFactory.getLogger(Recovery.class);
  private static final int READ_CHUNK_BYTES = 16 << 20;
  private static final byte[] CATCHING_UP = MetaKeys.bytes(MetaKeys.CATCHING_UP);

  /** The data folder holds no state this replica can start from; the message says what to do. */
  public static final class InconsistentDataException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    InconsistentDataException(String message) {
      super(message);
    }
  }

  private Recovery() {}

  /**
   * Recovers from storage at a start (see the class comment) and returns what the core starts from.
   *
   * @param where names the data folder in messages
   * @param buffered the durability setting is buffered (log writes not synced): a restart after a
   *     crash may have lost acknowledged entries and must run the recovery protocol (VR Revisited 4.3)
   * @param replicated more than one replica (a single replica has nobody to recover from)
   * @throws InconsistentDataException when the log has a hole
   */
  public static RecoveredState recover(Storage storage, KvStateMachine stateMachine, String where,
      boolean buffered, boolean replicated) {
    storage.sync();
    stateMachine.load();
    long applied = stateMachine.applied();
    List<Entry> above = checkLog(storage, applied, where);
    if (!above.isEmpty()) {
      log.atInfo().addKeyValue("from", applied + 1).addKeyValue("to", applied + above.size())
          .log("re-applying log entries beyond the applied state");
    }
    long first = storage.firstLogOp();
    long view = ReplicaMeta.getLong(storage, ReplicaMeta.VIEW);
    long lastNormalView = ReplicaMeta.getLong(storage, ReplicaMeta.LAST_NORMAL_VIEW);
    // A synced marker written at the first start tells a restart from a fresh replica, even when a
    // crash under buffered durability lost everything else.
    boolean restarted = ReplicaMeta.has(storage, ReplicaMeta.INITIALIZED);
    if (!restarted) {
      ReplicaMeta.put(storage, ReplicaMeta.INITIALIZED);
    }
    // A graceful shutdown synced everything and left a marker: then nothing acknowledged can be lost
    // and the recovery protocol is not needed (it could not even run if the whole cluster restarted).
    boolean clean = ReplicaMeta.has(storage, ReplicaMeta.CLEAN_SHUTDOWN);
    if (clean) {
      ReplicaMeta.delete(storage, ReplicaMeta.CLEAN_SHUTDOWN);
    }
    boolean recovering = buffered && replicated && restarted && !clean;
    if (recovering && storage.getMeta(CATCHING_UP) == null) {
      // After recovery it rejoins as a replica that must catch up (it may have lost what it
      // acknowledged); recorded now, synced, so a clean stop before it has caught up cannot bring it
      // back as a voter with that log. The core clears it once caught up (Effects.caughtUp).
      ReplicaMeta.markCatchingUp(storage);
    }
    // The wipe of an interrupted install lost state this replica may have acknowledged: it must not
    // vote or acknowledge until it has caught up (issue 9, 2b). The state machine's load records the
    // marker in the wipe's own synced write; recording it here too covers a load that does not.
    boolean mustCatchUp = storage.getMeta(CATCHING_UP) != null;
    if (stateMachine.wipedInterruptedInstall()) {
      log.atWarn().addKeyValue("data", where)
          .log("an interrupted state transfer was wiped; catching up before voting or acknowledging");
      if (!mustCatchUp) {
        ReplicaMeta.markCatchingUp(storage);
      }
      mustCatchUp = true;
    }
    return new RecoveredState(view, lastNormalView, restarted, recovering, mustCatchUp, applied,
        stateMachine.checksum(), first == 0 ? applied + 1 : first, above);
  }

  /**
   * Prepares a data folder for a replica that lost its state (`choir server --rejoin`): moves what is
   * there aside (to a sibling folder named after the time, kept for diagnosis), creates an empty one and
   * marks it, synced, as initialized and catching up. Started on it, the replica fetches the state from
   * the others and neither votes nor acknowledges until it has caught up (RecoveredState.mustCatchUp):
   * a replica that simply started empty would count as a new one and vote with a log it does not hold.
   * Returns the folder the old data was moved to, or null when there was none.
   */
  public static Path prepareRejoin(Path dataDir) throws IOException {
    Path aside = null;
    if (Files.exists(dataDir)) {
      aside = dataDir.resolveSibling(dataDir.getFileName() + ".lost-" + System.currentTimeMillis());
      Files.move(dataDir, aside);
    }
    Files.createDirectories(dataDir);
    try (Storage storage = RocksDbStorage.open(dataDir)) {
      ReplicaMeta.put(storage, ReplicaMeta.INITIALIZED);
      ReplicaMeta.markCatchingUp(storage);
    }
    log.atWarn().addKeyValue("data", dataDir.toAbsolutePath()).addKeyValue("old_data", aside)
        .log("rejoining with an empty data folder: catching up before voting or acknowledging");
    return aside;
  }

  /**
   * Reads the whole log in chunks, checking that it has no hole and meets the applied state (see the
   * class comment); returns the entries above applied, in op order.
   */
  static List<Entry> checkLog(Storage storage, long applied, String where) {
    long first = storage.firstLogOp();
    long last = storage.lastLogOp();
    List<Entry> above = new ArrayList<>();
    if (first == 0) {
      return above;
    }
    if (first > applied + 1) {
      throw hole(where, "the log starts at op " + first + " but the applied state ends at op " + applied
          + ": ops " + (applied + 1) + ".." + (first - 1) + " are in neither", first, last, applied);
    }
    if (last < applied) {
      throw hole(where, "the log ends at op " + last + " below the applied op " + applied
          + ": the state holds ops " + (last + 1) + ".." + applied + " that the log lost", first, last, applied);
    }
    long next = first;
    while (next <= last) {
      List<Entry> chunk = storage.readLog(next, last, READ_CHUNK_BYTES);
      if (chunk.isEmpty()) {
        throw hole(where, "the log is missing ops " + next + ".." + last, first, last, applied);
      }
      for (Entry e : chunk) {
        if (e.getOp() != next) {
          throw hole(where, e.getOp() > next
              ? "the log is missing ops " + next + ".." + (e.getOp() - 1)
              : "the log holds op " + e.getOp() + " where op " + next + " belongs", first, last, applied);
        }
        if (next > applied) {
          above.add(e);
        }
        next++;
      }
    }
    return above;
  }

  private static InconsistentDataException hole(String where, String what, long first, long last,
      long applied) {
    return new InconsistentDataException("refusing to start on data folder " + where + ": " + what
        + " (log ops " + first + ".." + last + ", applied " + applied + "). This replica's log has a hole,"
        + " so it holds no state it could vote or serve with. To recover, while a majority of the other"
        + " replicas is up and healthy, start this replica once with `choir server --rejoin`: that moves"
        + " this folder aside (kept for diagnosis), starts from an empty one and fetches the state from"
        + " the others, voting and acknowledging nothing until it has caught up. Do not just empty the"
        + " folder: a replica with an empty folder counts as a new one and would vote with an empty log.");
  }
}
