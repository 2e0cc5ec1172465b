package io.choir.server.statemachine;

import io.choir.proto.ClientRecord;
import io.choir.proto.LeaseRecord;
import io.choir.proto.MembershipRecord;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StorageSnapshot;
import java.util.List;

/**
 * TransferRows reads, from a storage snapshot, the rows of the state machine that a state transfer
 * sends beside the data (the client table, the membership row, the lease table) as self-contained
 * records, and checks what a receiver is sent: the one place outside this package that knows how
 * those rows are laid out. {@link KvStateMachine#installSnapshot} takes what these read.
 */
public final class TransferRows {
  private static final byte[] MEMBERSHIP = MetaKeys.bytes(MetaKeys.MEMBERSHIP);

  private TransferRows() {}

  /**
   * The client table as of snapshot, one self-contained record per session (its saved replies
   * included), in client id order: what a state transfer streams.
   *
   * @throws io.choir.server.storage.StorageException on a malformed or orphan client table row
   */
  public static List<ClientRecord> clientTable(StorageSnapshot snapshot) {
    return ClientRows.records(snapshot.scanMeta(ClientRows.PREFIX));
  }

  /** The meta key of clientId's client table header row: "client/" and the id as 8 bytes BE. */
  public static byte[] clientKey(long clientId) {
    return ClientRows.clientKey(clientId);
  }

  /** The membership row of snapshot (epoch 0: the bootstrap membership). */
  public static MembershipRecord membership(StorageSnapshot snapshot) {
    return MembershipRow.parse(snapshot.getMeta(MEMBERSHIP));
  }

  /** The lease table as of snapshot, one self-contained record per lease (its keys included), in id order. */
  public static List<LeaseRecord> leaseTable(StorageSnapshot snapshot) {
    return LeaseQueries.records(snapshot);
  }

  /** What is wrong with a lease record received in a state transfer, or null. */
  public static String leaseRecordProblem(LeaseRecord record) {
    return LeaseQueries.problem(record);
  }
}
