package io.choir.server.net.transfer;

import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.LeaseRecord;
import io.choir.proto.MembershipRecord;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import java.util.List;

/**
 * InstallTarget is where a {@link StateTransferReceiver} installs a snapshot: the state machine's
 * three install steps, plus a read-back of what storage holds, for the end-to-end digest check. Every
 * method runs on the storage thread, in the order the receiver submits its steps.
 */
public interface InstallTarget {
  /** Wipes the state and sets the "installing" marker, synced ({@link KvStateMachine#beginInstall}). */
  void beginInstall();

  /** Writes one chunk of pairs ({@link KvStateMachine#installData}). */
  void installData(List<KeyValue> kvs);

  /**
   * Adds every data pair storage holds now to digest, in key order, reading about maxBytesPerRead of
   * keys and values at a time (so the read-back holds one page, never the whole state).
   */
  void readBack(SnapshotDigest digest, int maxBytesPerRead);

  /**
   * Writes the client rows, op and checksum and removes the marker, synced ({@link
   * KvStateMachine#installSnapshot}).
   */
  void installSnapshot(long op, long checksum, List<ClientRecord> clients);

  /**
   * Like {@link #installSnapshot(long, long, List)}, with the snapshot's membership row in the same
   * synced write (null: the source sent none, the row is kept). A target that keeps no membership
   * ignores it.
   */
  default void installSnapshot(long op, long checksum, List<ClientRecord> clients, MembershipRecord membership) {
    installSnapshot(op, checksum, clients);
  }

  /**
   * Like {@link #installSnapshot(long, long, List, MembershipRecord)}, with the snapshot's lease table
   * (membership null: keep the row). A target that keeps no leases ignores them.
   */
  default void installSnapshot(long op, long checksum, List<ClientRecord> clients, MembershipRecord membership,
      List<LeaseRecord> leases) {
    if (membership == null) {
      installSnapshot(op, checksum, clients);
    } else {
      installSnapshot(op, checksum, clients, membership);
    }
  }

  /** The production target: stateMachine's install steps, read back from storage (its storage). */
  static InstallTarget of(KvStateMachine stateMachine, Storage storage) {
    return new InstallTarget() {
      @Override
      public void beginInstall() {
        stateMachine.beginInstall();
      }

      @Override
      public void installData(List<KeyValue> kvs) {
        stateMachine.installData(kvs);
      }

      @Override
      public void readBack(SnapshotDigest digest, int maxBytesPerRead) {
        readBackFrom(storage, digest, maxBytesPerRead);
      }

      @Override
      public void installSnapshot(long op, long checksum, List<ClientRecord> clients) {
        stateMachine.installSnapshot(op, checksum, clients);
      }

      @Override
      public void installSnapshot(long op, long checksum, List<ClientRecord> clients, MembershipRecord membership) {
        stateMachine.installSnapshot(op, checksum, clients, membership);
      }

      @Override
      public void installSnapshot(long op, long checksum, List<ClientRecord> clients, MembershipRecord membership,
          List<LeaseRecord> leases) {
        stateMachine.installSnapshot(op, checksum, clients, membership, leases);
      }
    };
  }

  /**
   * Adds every data pair of storage to digest through a storage snapshot, page by page (the shared
   * read-back of {@link #of}; also usable by other targets over a {@link Storage}).
   */
  static void readBackFrom(Storage storage, SnapshotDigest digest, int maxBytesPerRead) {
    try (StorageSnapshot snapshot = storage.snapshot()) {
      byte[] cursor = new byte[0];
      while (true) {
        List<KeyValue> page = snapshot.scanData(cursor, Integer.MAX_VALUE, maxBytesPerRead);
        if (page.isEmpty()) {
          return;
        }
        digest.addAllData(page);
        cursor = Bytes.successor(page.get(page.size() - 1).getKey().toByteArray());
      }
    }
  }
}
