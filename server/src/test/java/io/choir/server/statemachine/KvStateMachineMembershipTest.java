package io.choir.server.statemachine;

import static io.choir.server.statemachine.KvStateMachineTest.entriesFrom;
import static io.choir.server.statemachine.KvStateMachineTest.put;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.choir.proto.AddLearner;
import io.choir.proto.AppliedChange;
import io.choir.proto.Entry;
import io.choir.proto.EpochChange;
import io.choir.proto.MemberAddress;
import io.choir.proto.MemberRole;
import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import io.choir.proto.MembershipRecord;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.core.Membership;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * KvStateMachineMembershipTest: the membership row (DESIGN.md "Membership") follows the configuration
 * entries of the log alone, refuses one that does not fit (INVALID, nothing changed, the same on every
 * replica), keeps the last changes of sessions as the core's Membership does, survives a restart, travels
 * with a snapshot and is kept by the start of an install.
 */
class KvStateMachineMembershipTest {
  static MemberAddress member(int id) {
    return MemberAddress.newBuilder().setId(id).setClientAddress("127.0.0.1:73" + id).setPeerAddress("127.0.0.1:74" + id)
        .build();
  }

  static Entry.Builder addLearner(long epoch, List<Integer> voters, List<Integer> learners, int learner) {
    AddLearner.Builder a = AddLearner.newBuilder().setLearner(member(learner)).setEpoch(epoch)
        .setStartView((epoch - 1) << 48);
    voters.forEach(id -> a.addVoters(member(id)));
    learners.forEach(id -> a.addLearners(member(id)));
    return Entry.newBuilder().setAddLearner(a);
  }

  static Entry.Builder epochChange(long epoch, List<Integer> voters, long startView) {
    EpochChange.Builder c = EpochChange.newBuilder().setEpoch(epoch).setStartView(startView);
    voters.forEach(id -> c.addVoters(member(id)));
    return Entry.newBuilder().setEpochChange(c);
  }

  @Nested
  class OnMemoryStorage extends Cases {
    @Override
    Storage newStorage() {
      return new MemoryStorage();
    }

    @Override
    Storage reopen(Storage storage) {
      return ((MemoryStorage) storage).crash();
    }
  }

  @Nested
  class OnRocksDbStorage extends Cases {
    @TempDir Path tempDir;
    private int opened;

    @Override
    Storage newStorage() {
      return RocksDbStorage.open(tempDir.resolve("db" + opened++));
    }

    @Override
    Storage reopen(Storage storage) {
      RocksDbStorage rocks = (RocksDbStorage) storage;
      rocks.close();
      return RocksDbStorage.open(rocks.dir());
    }
  }

  abstract static class Cases {
    abstract Storage newStorage();

    abstract Storage reopen(Storage storage);

    private KvStateMachine open(Storage storage) {
      KvStateMachine sm = new KvStateMachine(storage, 4, 3);
      sm.load();
      return sm;
    }

    @Test
    void shouldStartAtTheBootstrapMembershipAndFollowTheConfigurationEntries() {
      Storage storage = newStorage();
      KvStateMachine sm = open(storage);
      assertEquals(0, sm.membership().getEpoch(), "no row: the bootstrap membership");

      List<Response> replies = sm.apply(entriesFrom(1, put(0, 0, "a", "1"),
          addLearner(1, List.of(1, 2, 3), List.of(4), 4), epochChange(2, List.of(1, 2, 3, 4), (1L << 48) + 1)), true);

      assertEquals(Status.OK, replies.get(1).getStatus());
      assertEquals(Status.OK, replies.get(2).getStatus());
      // An OK reply carries the membership after the change.
      MembershipInfo afterAdd = replies.get(1).getMembership();
      assertEquals(1, afterAdd.getEpoch());
      assertEquals(List.of(MemberRole.VOTER, MemberRole.VOTER, MemberRole.VOTER, MemberRole.LEARNER),
          afterAdd.getMembersList().stream().map(MemberStatus::getRole).toList());
      assertEquals("127.0.0.1:734", afterAdd.getMembers(3).getClientAddress());
      MembershipInfo afterPromote = replies.get(2).getMembership();
      assertEquals(2, afterPromote.getEpoch());
      assertEquals((1L << 48) + 1, afterPromote.getStartView());
      assertEquals(List.of(1, 2, 3, 4), afterPromote.getMembersList().stream().map(MemberStatus::getId).toList());
      assertEquals(false, afterPromote.getChangeInProgress());
      assertEquals(false, replies.get(0).hasMembership(), "a write's reply has none");
      MembershipRecord m = sm.membership();
      assertEquals(2, m.getEpoch());
      assertEquals(List.of(1, 2, 3, 4), m.getVotersList().stream().map(MemberAddress::getId).toList());
      assertEquals(0, m.getLearnersCount());
      assertEquals((1L << 48) + 1, m.getStartView());
      assertEquals(3, m.getOp());
      storage.close();
    }

    @Test
    void shouldRefuseAConfigurationEntryThatDoesNotFitAndChangeNothing() {
      Storage storage = newStorage();
      KvStateMachine sm = open(storage);
      List<Response> replies = sm.apply(entriesFrom(1,
          epochChange(3, List.of(1, 2), 2L << 48), // skips epoch 2
          addLearner(2, List.of(1, 2, 3), List.of(4), 4), // the wrong epoch
          addLearner(1, List.of(1, 2, 3), List.of(3), 3), // a voter as learner
          epochChange(2, List.of(), 1L << 48)), true); // no voters

      replies.forEach(r -> assertEquals(Status.INVALID, r.getStatus(), r.toString()));
      replies.forEach(r -> assertEquals(false, r.hasMembership(), "a refusal carries no membership"));
      assertEquals(MembershipRecord.getDefaultInstance(), sm.membership());
      assertEquals(4, sm.applied(), "every entry is applied, even a refused one");
      storage.close();
    }

    @Test
    void shouldKeepTheLastChangesOfSessionsInTheRowAsTheCoresMembershipDoes() {
      Storage storage = newStorage();
      KvStateMachine sm = open(storage);
      // Epochs 2..21, each asked by session 9 with the epoch as request id; one more without a session.
      List<Entry.Builder> changes = new ArrayList<>();
      for (long epoch = 2; epoch <= 21; epoch++) {
        changes.add(epochChange(epoch, List.of(1, 2), (epoch - 1) << 48).setClientId(9).setRequestId(epoch));
      }
      changes.add(epochChange(22, List.of(1, 2), 21L << 48));
      List<Entry> entries = entriesFrom(1, changes.toArray(Entry.Builder[]::new));
      sm.apply(entries, true);
      Membership core = Membership.bootstrap(List.of(1, 2, 3), Map.of());
      for (Entry e : entries) {
        core = core.after(e).orElseThrow();
      }

      List<AppliedChange> recent = sm.membership().getRecentChangesList();
      assertEquals(Membership.MAX_RECENT_CHANGES, recent.size(), "bounded: the oldest are dropped");
      assertEquals(AppliedChange.newBuilder().setClientId(9).setRequestId(21).setOp(20).build(),
          recent.get(recent.size() - 1), "the last change of a session; the one without none");
      assertEquals(6, recent.get(0).getRequestId());
      assertEquals(core.recentChanges(), Membership.fromRecord(sm.membership(), core).recentChanges(),
          "the row and the core's membership agree");
      storage = reopen(storage);
      assertEquals(recent, open(storage).membership().getRecentChangesList(), "across a restart");
      storage.close();
    }

    @Test
    void shouldKeepTheRowAcrossARestart() {
      Storage storage = newStorage();
      KvStateMachine sm = open(storage);
      sm.apply(entriesFrom(1, epochChange(2, List.of(1, 2), 1L << 48)), true);

      storage = reopen(storage);
      KvStateMachine restarted = open(storage);

      assertEquals(2, restarted.membership().getEpoch());
      assertEquals(sm.checksum(), restarted.checksum());
      storage.close();
    }

    @Test
    void shouldCarryTheRowInASnapshotAndKeepItThroughTheStartOfAnInstall() {
      Storage source = newStorage();
      KvStateMachine from = open(source);
      from.apply(entriesFrom(1, addLearner(1, List.of(1), List.of(2), 2)), true);
      MembershipRecord sent;
      try (StorageSnapshot snapshot = source.snapshot()) {
        sent = TransferRows.membership(snapshot);
      }
      assertEquals(from.membership(), sent);

      Storage target = newStorage();
      KvStateMachine to = open(target);
      to.apply(entriesFrom(1, epochChange(2, List.of(7), 1L << 48)), true);
      to.beginInstall();
      assertNotNull(target.getMeta(MetaKeys.bytes(MetaKeys.MEMBERSHIP)), "an install's start keeps the row");
      to.installSnapshot(1, from.checksum(), List.of(), sent);
      assertEquals(sent, to.membership());

      to.beginInstall();
      to.installSnapshot(1, from.checksum(), List.of(), null);
      assertEquals(sent, to.membership(), "a source that sends no row: the replica's own is kept");
      to.beginInstall();
      to.installSnapshot(1, from.checksum(), List.of(), MembershipRecord.getDefaultInstance());
      assertEquals(0, to.membership().getEpoch(), "a snapshot of the bootstrap membership");
      target = reopen(target);
      assertEquals(0, open(target).membership().getEpoch());
      source.close();
      target.close();
    }
  }
}
