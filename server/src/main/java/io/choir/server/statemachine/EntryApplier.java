package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.Response;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StateStore;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.util.ArrayList;
import java.util.List;

/**
 * EntryApplier turns a run of consecutive committed entries into their replies and the ONE {@link
 * WriteSet} that records them: for each entry, in order, the session expiry by its time, the session
 * rules ({@link ClientSessions}), the data command ({@link Commands}, over an {@link Overlay} of the
 * call's changes) and the next link of the {@link ChecksumChain}; then the data changes, the applied
 * number, the checksum, the changed client table rows, the membership row ({@link MembershipRow}) and the changed
 * lease rows ({@link LeaseTable}). It writes nothing itself: the state
 * machine writes the set and only then publishes the new applied state.
 *
 * <p>Apply thread only. It changes the client table in place; a caller whose write fails reloads it.
 */
final class EntryApplier {
  private static final byte[] APPLIED = MetaKeys.bytes(MetaKeys.APPLIED);
  private static final byte[] CHECKSUM = MetaKeys.bytes(MetaKeys.CHECKSUM);

  /** Applied is the outcome of one call: a reply per entry, the set to write, the new state. */
  record Applied(List<Response> replies, WriteSet set, long applied, long checksum, List<Change> changes,
      Overlay data) {}

  private final StateStore storage;
  private final ClientSessions sessions;
  private final MembershipRow membership;
  private final LeaseTable leases;
  private final RecentValues recent;
  private final ChecksumChain checksums = new ChecksumChain();

  /**
   * Checks that entries continue from applied (consecutive ops from applied + 1) and that entryBytes,
   * when given, holds one byte string per entry.
   *
   * @throws IllegalStateException on a gap or an op applied twice (it would silently diverge)
   * @throws IllegalArgumentException when entryBytes has another size than entries
   */
  static void checkContinues(long applied, List<Entry> entries, List<ByteString> entryBytes) {
    if (entryBytes != null && entryBytes.size() != entries.size()) {
      throw new IllegalArgumentException(
          entries.size() + " entries but " + entryBytes.size() + " stored byte strings");
    }
    for (int i = 0; i < entries.size(); i++) {
      long expected = applied + 1 + i;
      if (entries.get(i).getOp() != expected) {
        throw new IllegalStateException(
            "entry " + i + " has op " + entries.get(i).getOp() + ", expected " + expected
                + " (applied " + applied + ")");
      }
    }
  }

  EntryApplier(StateStore storage, ClientSessions sessions, MembershipRow membership, LeaseTable leases,
      RecentValues recent) {
    this.storage = storage;
    this.recent = recent;
    this.sessions = sessions;
    this.membership = membership;
    this.leases = leases;
  }

  /**
   * Applies entries (consecutive, at least one; the caller checked) on top of a state whose checksum
   * is checksum, hashing entryBytes.get(i) for entry i, or each entry's own serialization when
   * entryBytes is null.
   */
  Applied apply(long checksum, List<Entry> entries, List<ByteString> entryBytes, boolean recordChanges) {
    Overlay data = new Overlay(storage, recent);
    List<Change> changes = List.of();
    if (recordChanges) {
      data.record();
      changes = new ArrayList<>();
    }
    List<Response> replies = new ArrayList<>(entries.size());
    for (int i = 0; i < entries.size(); i++) {
      Entry entry = entries.get(i);
      replies.add(applyOne(entry, data));
      if (recordChanges) {
        for (Overlay.Recorded r : data.takeRecorded()) {
          Versioned prev = r.prev();
          changes.add(new Change(entry.getOp(), r.key(), r.value() == null ? null : r.value().value(),
              prev == null ? null : prev.value(), prev == null ? 0 : prev.version()));
        }
      }
      ByteString bytes = entryBytes != null ? entryBytes.get(i) : entry.toByteString();
      checksum = checksums.next(checksum, bytes);
    }
    long applied = entries.get(entries.size() - 1).getOp();

    WriteSet set = new WriteSet();
    data.writeTo(set);
    set.putMeta(APPLIED, Bytes.longToBytes(applied));
    set.putMeta(CHECKSUM, Bytes.longToBytes(checksum));
    sessions.writeTo(set);
    membership.writeTo(set);
    leases.writeTo(set);
    return new Applied(replies, set, applied, checksum, changes, data);
  }

  /** Applies one entry within a call: expiry by its time, the session rules, then the command. */
  private Response applyOne(Entry entry, Overlay data) {
    sessions.expireBefore(entry.getTimeMs());
    switch (entry.getCommandCase()) {
      case REGISTER_SESSION -> {
        return sessions.register(entry);
      }
      case CLOSE_SESSION -> {
        return sessions.close(entry);
      }
      case ADD_LEARNER, EPOCH_CHANGE -> {
        return membership.apply(entry); // no session: the primary writes them, once each
      }
      default -> {
        if (entry.getClientId() == 0) {
          return Commands.execute(entry, data, leases);
        }
        return sessions.executeOnce(entry, e -> Commands.execute(e, data, leases));
      }
    }
  }
}
