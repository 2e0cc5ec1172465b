package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.AddLearner;
import io.choir.proto.Entry;
import io.choir.proto.EpochChange;
import io.choir.proto.MemberAddress;
import io.choir.proto.MembershipRecord;
import io.choir.proto.Put;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.net.transfer.StateTransferReceiver.Installed;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.RocksDbStorage;
import io.choir.server.storage.Storage;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * StateTransferMembershipTest: a state transfer over TCP on loopback carries the source snapshot's
 * membership row in its last chunk, and the receiver installs it with the snapshot (durably) and
 * reports it in Installed, for Event.StateInstalled (DESIGN.md "Membership": a laggard or joiner that
 * catches up by state transfer enters the later epoch).
 */
class StateTransferMembershipTest {
  private static final long CLUSTER = 0x5eedC0FFEEL;
  private static final long WAIT_SECONDS = 120;

  @TempDir Path tempDir;

  private final List<AutoCloseable> closeables = new ArrayList<>();
  private ExecutorService storageThread;
  private StateTransferClient client;

  @BeforeEach
  void start() {
    storageThread = Executors.newSingleThreadExecutor(r -> new Thread(r, "test-storage"));
    client = new StateTransferClient(StateTransferClient.Limits.defaults());
  }

  @AfterEach
  void stop() throws Exception {
    client.close();
    storageThread.shutdown();
    assertTrue(storageThread.awaitTermination(WAIT_SECONDS, TimeUnit.SECONDS));
    for (int i = closeables.size() - 1; i >= 0; i--) {
      closeables.get(i).close();
    }
  }

  private Storage storage(String name) {
    Storage s = RocksDbStorage.open(tempDir.resolve(name));
    closeables.add(s);
    return s;
  }

  private static KvStateMachine loaded(Storage storage) {
    KvStateMachine sm = new KvStateMachine(storage, 64, 4);
    sm.load();
    return sm;
  }

  private static MemberAddress member(int id) {
    return MemberAddress.newBuilder().setId(id).setClientAddress("127.0.0.1:73" + id)
        .setPeerAddress("127.0.0.1:74" + id).build();
  }

  private static Entry put(long op, String key) {
    return Entry.newBuilder().setOp(op).setView(1).setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key))
        .setValue(ByteString.copyFromUtf8("v" + op))).build();
  }

  /** Puts, replica 4 added as a learner, promoted (epoch 2), then more puts: 8 ops. */
  private static List<Entry> history() {
    long base2 = 1L << 48;
    List<Entry> entries = new ArrayList<>();
    entries.add(put(1, "a"));
    entries.add(put(2, "b"));
    entries.add(Entry.newBuilder().setOp(3).setView(1).setAddLearner(AddLearner.newBuilder().setEpoch(1)
        .setLearner(member(4)).addAllVoters(List.of(member(1), member(2), member(3))).addLearners(member(4)))
        .build());
    entries.add(put(4, "c"));
    entries.add(Entry.newBuilder().setOp(5).setView(1).setEpochChange(EpochChange.newBuilder().setEpoch(2)
        .addAllVoters(List.of(member(1), member(2), member(3), member(4))).setStartView(base2)).build());
    entries.add(put(6, "d").toBuilder().setView(base2).build());
    return entries;
  }

  private CompletableFuture<Installed> fetch(InetSocketAddress source, KvStateMachine sm, Storage storage) {
    return client.fetch(source, CLUSTER, 4, 1, sm.applied(), storageThread::execute, sm, storage,
        Duration.ofSeconds(WAIT_SECONDS));
  }

  private StateTransferServer server(Storage source) throws InterruptedException {
    StateTransferServer server = new StateTransferServer(new InetSocketAddress("127.0.0.1", 0), 1, CLUSTER,
        Set.of(1, 2, 3, 4), () -> 1, source, new StateTransferServer.Limits(2, 8, 64 << 10, 65_536, 10_000, 60_000), 1);
    closeables.add(server);
    return server;
  }

  @Test
  void shouldCarryTheSnapshotsMembershipRowAndInstallIt() throws Exception {
    Storage sourceStorage = storage("source");
    KvStateMachine source = loaded(sourceStorage);
    for (Response r : source.apply(history(), true)) {
      assertEquals(Status.OK, r.getStatus(), r.toString());
    }
    MembershipRecord expected = source.membership();
    assertEquals(2, expected.getEpoch());

    Storage targetStorage = storage("target"); // a joiner: empty, at the bootstrap membership
    KvStateMachine target = loaded(targetStorage);
    assertEquals(0, target.membership().getEpoch());

    Installed installed = fetch(server(sourceStorage).localAddress(), target, targetStorage)
        .get(WAIT_SECONDS, TimeUnit.SECONDS);

    assertEquals(6, installed.op());
    assertEquals(expected, installed.membership(), "Installed carries the row for Event.StateInstalled");
    CompletableFuture.runAsync(() -> {}, storageThread).get(WAIT_SECONDS, TimeUnit.SECONDS);
    assertEquals(expected, target.membership(), "installed with the snapshot");
    assertEquals(expected, loaded(targetStorage).membership(), "durably: a reload finds it");
  }

  @Test
  void shouldSendNoRowForTheBootstrapMembership() throws Exception {
    Storage sourceStorage = storage("source");
    KvStateMachine source = loaded(sourceStorage);
    source.apply(List.of(put(1, "a"), put(2, "b")), true);
    Storage targetStorage = storage("target");
    KvStateMachine target = loaded(targetStorage);

    Installed installed = fetch(server(sourceStorage).localAddress(), target, targetStorage)
        .get(WAIT_SECONDS, TimeUnit.SECONDS);

    assertEquals(null, installed.membership(), "none sent: the stream of a cluster that never changed is as before");
    assertEquals(0, target.membership().getEpoch());
  }
}
