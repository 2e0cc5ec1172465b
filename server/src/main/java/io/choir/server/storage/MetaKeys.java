package io.choir.server.storage;

import java.nio.charset.StandardCharsets;

/**
 * MetaKeys names the meta rows of the state machine that a state transfer replaces. They live here,
 * next to {@link Storage}, because {@link Storage#beginInstall()} must clear exactly these rows (and
 * keep the protocol's own rows, such as the persisted view) without depending on the state machine.
 */
public final class MetaKeys {
  /** Meta key of the applied op number (8 bytes big-endian). */
  public static final String APPLIED = "applied";

  /** Meta key of the running checksum at the applied op (8 bytes big-endian). */
  public static final String CHECKSUM = "checksum";

  /**
   * Meta key prefix of the client table rows: {@code client/<id8>} is a session's header (a
   * ClientRecord without replies) and {@code client/<id8><request_id8>} one of its saved replies (a
   * SavedReply), ids as 8 bytes big-endian; the state machine's ClientSessions owns the layout. Every
   * row of the table starts with this prefix, so clearing the prefix clears the whole table.
   */
  public static final String CLIENT_PREFIX = "client/";

  /**
   * Meta key prefix of the lease table rows (the state machine's LeaseTable owns the layout): every row
   * of the table starts with it, so clearing the prefix clears the whole table, as an install does.
   */
  public static final String LEASE_PREFIX = "lease/";

  /**
   * Meta key present (value 1) from {@link Storage#beginInstall()} until the state machine finishes
   * the install: while it is set, the data and client rows are a partial snapshot, not a state.
   */
  public static final String INSTALLING = "installing";

  /**
   * Meta key present (value 1) from the moment a replica loses state it may have acknowledged (the
   * wipe of an interrupted install: KvStateMachine.load writes it in the same synced write that clears
   * {@link #INSTALLING}, so no crash leaves an emptied replica without it) until the replica has caught
   * up again (the core's Effects.caughtUp, cleared in the write of the last normal view). While it is
   * set the replica neither votes in a view change nor acknowledges entries (RecoveredState.mustCatchUp).
   * {@link Storage#beginInstall()} keeps it, and so does a finished install: only the core clears it.
   */
  public static final String CATCHING_UP = "catching_up";

  /**
   * Meta key of the datagram epoch of this replica's latest start (8 bytes big-endian; see the
   * security package's DatagramEpochs): part of every sealed datagram's nonce, written synced before
   * the first datagram of a start. A protocol row: an install keeps it.
   */
  public static final String DATAGRAM_EPOCH = "datagram_epoch";

  /**
   * Meta key of the membership row (a serialized MembershipRecord; absent: the bootstrap membership,
   * epoch 1 with the configured replicas): written by the apply of each configuration entry in that
   * entry's WriteSet, and by a finished install with the snapshot's row. {@link Storage#beginInstall()}
   * keeps it (a replica emptied by an interrupted install still knows the last membership it applied,
   * which names whom to catch up from), so it is not among the rows an install clears.
   */
  public static final String MEMBERSHIP = "membership";

  private MetaKeys() {}

  /** The key as stored: its US-ASCII bytes (a new array each call, so callers may keep it). */
  public static byte[] bytes(String key) {
    return key.getBytes(StandardCharsets.US_ASCII);
  }
}
