package io.choir.server.replica;

import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.WriteSet;
import java.nio.charset.StandardCharsets;

/**
 * ReplicaMeta names the meta rows the replica process keeps for the protocol (beside the state
 * machine's rows in {@link MetaKeys}, which a state transfer replaces; these it keeps) and writes
 * them. Server and simulator both go through here, so they write the same rows the same way.
 */
public final class ReplicaMeta {
  /** The persisted view, 8 bytes BE (VR Revisited 4.2: never go back to an older view). */
  public static final byte[] VIEW = "view".getBytes(StandardCharsets.UTF_8);
  /** The last view in which this replica's log was complete, 8 bytes BE. */
  public static final byte[] LAST_NORMAL_VIEW = "last_normal_view".getBytes(StandardCharsets.UTF_8);
  /** Written once, synced, at a replica's first start: tells a restart from a fresh replica. */
  public static final byte[] INITIALIZED = "initialized".getBytes(StandardCharsets.UTF_8);
  /** Written, synced, at the end of a graceful shutdown; deleted (synced) at the next start. */
  public static final byte[] CLEAN_SHUTDOWN = "clean_shutdown".getBytes(StandardCharsets.UTF_8);

  private static final byte[] CATCHING_UP = MetaKeys.bytes(MetaKeys.CATCHING_UP);
  private static final byte[] ONE = {1};

  private ReplicaMeta() {}

  /** Durably records the view (one small synced write) before the core speaks in it. */
  public static void storeView(Storage storage, long view) {
    storage.write(new WriteSet().putMeta(VIEW, Bytes.longToBytes(view)), true);
  }

  /**
   * Durably records the last normal view (one synced write, on the log lane after the log writes it
   * vouches for); when caughtUp (Effects.caughtUp: the log is complete again after this replica lost
   * state), the same write deletes {@link MetaKeys#CATCHING_UP}, so the marker never goes without the
   * view that ends it, nor the view without the marker going.
   */
  public static void storeLastNormalView(Storage storage, long lastNormalView, boolean caughtUp) {
    WriteSet set = new WriteSet().putMeta(LAST_NORMAL_VIEW, Bytes.longToBytes(lastNormalView));
    if (caughtUp) {
      set.deleteMeta(CATCHING_UP);
    }
    storage.write(set, true);
  }

  /** Records, synced, that this replica lost state it may have acknowledged and must catch up. */
  static void markCatchingUp(Storage storage) {
    storage.write(new WriteSet().putMeta(CATCHING_UP, ONE), true);
  }

  /** Records, synced, that a graceful shutdown finished (everything before it is synced too). */
  public static void markCleanShutdown(Storage storage) {
    storage.write(new WriteSet().putMeta(CLEAN_SHUTDOWN, ONE), true);
  }

  static boolean has(Storage storage, byte[] key) {
    return storage.getMeta(key) != null;
  }

  static void put(Storage storage, byte[] key) {
    storage.write(new WriteSet().putMeta(key, ONE), true);
  }

  static void delete(Storage storage, byte[] key) {
    storage.write(new WriteSet().deleteMeta(key), true);
  }

  static long getLong(Storage storage, byte[] key) {
    byte[] v = storage.getMeta(key);
    return v == null ? 0 : Bytes.bytesToLong(v);
  }
}
