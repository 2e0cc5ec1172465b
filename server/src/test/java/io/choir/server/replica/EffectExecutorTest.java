package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.server.config.CoreSettings;
import io.choir.server.core.Effects;
import io.choir.server.core.Membership;
import io.choir.server.core.RecoveredState;
import io.choir.server.core.ReplicaCore;
import io.choir.server.storage.MemoryStorage;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * EffectExecutorTest checks that effects are carried out in Effects' order, through the ports: the
 * view first (synced before any message of the view leaves, VR Revisited 4.2), then the log lane's
 * truncation, entries and last normal view, then sends, applies, the log's old end, resends, a state
 * transfer, reads, replies grouped per connection and client intake.
 */
class EffectExecutorTest {
  private final List<String> calls = new ArrayList<>();

  private EffectExecutor executor() {
    ReplicaCore core = new ReplicaCore(CoreSettings.defaults(1, List.of(1, 2, 3)).build(), RecoveredState.empty());
    return new EffectExecutor(core, new EffectExecutor.Ports(
        v -> calls.add("view " + v),
        new EffectExecutor.StoragePort() {
          @Override
          public void truncateLogAfter(long op) {
            calls.add("truncate after " + op);
          }

          @Override
          public void persist(List<Entry> entries, long epoch) {
            calls.add("persist " + entries.size() + " e" + epoch);
          }

          @Override
          public void storeLastNormalView(long lastNormalView, boolean caughtUp) {
            calls.add("lnv " + lastNormalView + (caughtUp ? " caught up" : ""));
          }

          @Override
          public void apply(List<Entry> entries) {
            calls.add("apply " + entries.size());
          }

          @Override
          public void truncateLogBefore(long op) {
            calls.add("truncate before " + op);
          }
        },
        new EffectExecutor.PeerPort() {
          @Override
          public void send(int to, long view, MessageType type, MessageLite body) {
            calls.add("send " + type + " to " + to);
          }

          @Override
          public void membersChanged(Membership membership) {
            calls.add("members e" + membership.epoch() + " " + membership.memberIds());
          }
        },
        r -> calls.add("resend " + r.fromOp() + ".." + r.toOp()),
        from -> calls.add("state transfer from " + from),
        read -> calls.add("read on " + read.connectionId()),
        new EffectExecutor.ClientPort() {
          @Override
          public void reply(long connectionId, List<Response> responses) {
            calls.add("reply " + responses.size() + " on " + connectionId);
          }

          @Override
          public void pauseIntake(boolean paused) {
            calls.add("pause " + paused);
          }
        }));
  }

  @Test
  void shouldCarryOutEffectsInTheirOrder() {
    Effects fx = new Effects();
    fx.pauseIntake(true);
    fx.reply(7, Response.getDefaultInstance());
    fx.reply(8, Response.getDefaultInstance());
    fx.reply(7, Response.getDefaultInstance());
    fx.read(9, Request.getDefaultInstance());
    fx.fetchStateFrom(2);
    fx.retransmit(new Effects.Retransmit(2, 1, 4, 6, 6));
    fx.truncateLogBefore(3);
    RecoveryTest.entries(1, 2).forEach(fx::apply);
    fx.send(Effects.MULTICAST, 1, MessageType.HEARTBEAT, Heartbeat.getDefaultInstance());
    fx.persistLastNormalView(1);
    fx.caughtUp();
    fx.truncateLogAfter(4); // before the entries above it: a truncation drops those asked before it
    fx.persistAll(RecoveryTest.entries(5, 7));
    fx.logEpoch(2);
    fx.persistView(1);

    executor().execute(fx);

    assertEquals(List.of("view 1", "truncate after 4", "persist 3 e2", "lnv 1 caught up",
        "send HEARTBEAT to 0", "apply 2", "truncate before 3", "resend 4..6", "state transfer from 2",
        "read on 9", "reply 2 on 7", "reply 1 on 8", "pause true"), calls);
  }

  @Test
  void shouldHandAMembershipChangeToThePeerPort() {
    Effects fx = new Effects();
    Membership m = new Membership(2, List.of(new Membership.Member(3, "", "127.0.0.1:7603"),
        new Membership.Member(4, "", "127.0.0.1:7604")), List.of(new Membership.Member(5, "", "127.0.0.1:7605")),
        Membership.epochBase(2));

    fx.peersChanged(m);
    executor().execute(fx);

    assertEquals(List.of("members e2 [3, 4, 5]"), calls);
  }

  @Test
  void shouldStepATickAtTheEndOfEveryBurstAndReturnTheNextTimer() {
    EffectExecutor executor = executor();

    executor.begin();
    long next = executor.end(1_000);

    assertEquals(true, next > 1_000 && next != Long.MAX_VALUE, "a fresh replica's election timer runs");
  }

  @Test
  void shouldResendOnlyWhatTheLogStillHoldsWithinTheByteBudget() {
    MemoryStorage log = new MemoryStorage();
    log.appendLog(RecoveryTest.entries(3, 40), true);
    List<Long> sent = new ArrayList<>();
    EffectExecutor.PeerPort peers = (to, view, type, body) -> ((Prepare) body).getEntriesList()
        .forEach(e -> sent.add(e.getOp()));

    EffectExecutor.resendFromLog(log, peers, 1400, new Effects.Retransmit(2, 1, 1, 6, 6));
    assertEquals(List.of(3L, 4L, 5L, 6L), sent);

    sent.clear();
    long oneEntry = RecoveryTest.entry(10).getSerializedSize();
    EffectExecutor.resendFromLog(log, peers, 1400, new Effects.Retransmit(2, 1, 10, 40, 40, 3 * oneEntry));
    assertEquals(List.of(10L, 11L, 12L), sent);
  }
}
