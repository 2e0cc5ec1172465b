package io.choir.server.core;

import io.choir.proto.BatchOp;
import io.choir.proto.Entry;

/**
 * EntryBytes states what the log stores and the checksum hashes for an entry: its serialization by
 * protobuf-java (known fields in field-number order, no unknown fields). Storage writes exactly those
 * bytes to the log and the state machine's checksum hashes exactly those bytes
 * (KvStateMachine.nextChecksum), so equal checksums mean equal stored logs on every replica.
 *
 * <p>That holds only if every replica serializes an entry to the bytes the primary made, i.e. if
 * parsing and serializing again gives back the same bytes. Protobuf keeps fields it does not know as
 * "unknown fields" and writes them after the known ones, which would change the bytes (and the
 * checksum) of an entry made by a newer version or forged: such an entry is not canonical, and a backup
 * drops it (counted) rather than store and hash bytes that differ from the primary's.
 */
public final class EntryBytes {
  private EntryBytes() {}

  /** True when e carries no unknown fields, at the top or in its command. */
  public static boolean canonical(Entry e) {
    if (e.getUnknownFields().getSerializedSize() != 0) {
      return false;
    }
    return switch (e.getCommandCase()) {
      case PUT -> e.getPut().getUnknownFields().getSerializedSize() == 0;
      case DELETE -> e.getDelete().getUnknownFields().getSerializedSize() == 0;
      case COMPARE_AND_SET -> e.getCompareAndSet().getUnknownFields().getSerializedSize() == 0;
      case BATCH -> canonicalBatch(e);
      case NOOP -> e.getNoop().getUnknownFields().getSerializedSize() == 0;
      case REGISTER_SESSION -> e.getRegisterSession().getUnknownFields().getSerializedSize() == 0;
      case CLOSE_SESSION -> e.getCloseSession().getUnknownFields().getSerializedSize() == 0;
      case ADD_LEARNER -> e.getAddLearner().getUnknownFields().getSerializedSize() == 0
          && e.getAddLearner().getLearner().getUnknownFields().getSerializedSize() == 0;
      case EPOCH_CHANGE -> e.getEpochChange().getUnknownFields().getSerializedSize() == 0;
      case LEASE_GRANT -> e.getLeaseGrant().getUnknownFields().getSerializedSize() == 0;
      case LEASE_KEEP_ALIVE -> e.getLeaseKeepAlive().getUnknownFields().getSerializedSize() == 0;
      case LEASE_REVOKE -> e.getLeaseRevoke().getUnknownFields().getSerializedSize() == 0;
      case LEASE_EXPIRE -> e.getLeaseExpire().getUnknownFields().getSerializedSize() == 0;
      case COMMAND_NOT_SET -> true;
    };
  }

  private static boolean canonicalBatch(Entry e) {
    if (e.getBatch().getUnknownFields().getSerializedSize() != 0) {
      return false;
    }
    for (BatchOp op : e.getBatch().getOpsList()) {
      if (op.getUnknownFields().getSerializedSize() != 0
          || op.getPut().getUnknownFields().getSerializedSize() != 0
          || op.getDelete().getUnknownFields().getSerializedSize() != 0
          || op.getCompareAndSet().getUnknownFields().getSerializedSize() != 0) {
        return false;
      }
    }
    return true;
  }
}
