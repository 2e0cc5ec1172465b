package io.choir.server.core;

import static io.choir.server.core.CoreKit.entry;
import static io.choir.server.core.CoreKit.ops;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.proto.Heartbeat;
import io.choir.proto.MessageType;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.server.core.Effects.Apply;
import io.choir.server.core.Effects.Effect;
import io.choir.server.core.Effects.FetchState;
import io.choir.server.core.Effects.PauseIntake;
import io.choir.server.core.Effects.Persist;
import io.choir.server.core.Effects.PersistLastNormalView;
import io.choir.server.core.Effects.PersistView;
import io.choir.server.core.Effects.Read;
import io.choir.server.core.Effects.Reply;
import io.choir.server.core.Effects.Retransmit;
import io.choir.server.core.Effects.Send;
import io.choir.server.core.Effects.TruncateLogAfter;
import io.choir.server.core.Effects.TruncateLogBefore;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/**
 * EffectsTest checks how a burst's asks become the effects to carry out: in Effects' order (the view
 * before anything is sent, VR Revisited 4.2; then the log lane's truncation, entries and last normal
 * view; then the rest), merged by its rules (one log write, the latest view, the lowest truncation ...).
 */
class EffectsTest {
  private static Response response(long requestId) {
    return Response.newBuilder().setRequestId(requestId).build();
  }

  @Test
  void shouldHandOverEveryKindInTheDocumentedOrderWhateverTheOrderAsked() {
    Effects fx = new Effects();
    Send heartbeat = new Send(Effects.MULTICAST, 4, MessageType.HEARTBEAT, Heartbeat.getDefaultInstance());
    Retransmit resend = new Retransmit(2, 4, 1, 2, 2);
    fx.pauseIntake(true);
    fx.reply(7, response(1));
    fx.read(9, Request.getDefaultInstance());
    fx.fetchStateFrom(2);
    fx.retransmit(resend);
    fx.truncateLogBefore(3);
    fx.apply(entry(1, 0, "a"));
    fx.send(heartbeat.to(), heartbeat.view(), heartbeat.type(), heartbeat.body());
    fx.persistLastNormalView(4);
    fx.truncateLogAfter(4);
    fx.logEpoch(2);
    fx.persist(entry(5, 4, "b"));
    fx.persistView(4);

    assertEquals(List.of(new PersistView(4), new TruncateLogAfter(4), new Persist(List.of(entry(5, 4, "b")), 2),
        new PersistLastNormalView(4, false), heartbeat, new Apply(List.of(entry(1, 0, "a"))),
        new TruncateLogBefore(3), resend, new FetchState(2), new Read(9, Request.getDefaultInstance()),
        new Reply(7, List.of(response(1))), new PauseIntake(true)), fx.toExecute());
  }

  @Test
  void shouldRecordOnlyTheLatestViewOfABurst() {
    Effects fx = new Effects();
    fx.persistView(3); // a step starts view 3's change
    fx.send(Effects.MULTICAST, 3, MessageType.START_VIEW_CHANGE, Heartbeat.getDefaultInstance());
    fx.persistView(4); // a later step of the burst moves on to view 4

    List<Effect> out = fx.toExecute();
    assertEquals(new PersistView(4), out.get(0), "view 4's record keeps the replica from going back to 3 too");
    assertEquals(1, out.stream().filter(PersistView.class::isInstance).count());
    assertTrue(out.get(1) instanceof Send, "synced before view 3's message leaves");
  }

  @Test
  void shouldTruncateOnceAtTheLowestOpAndDropTheEntriesAskedBeforeItAboveIt() {
    Effects fx = new Effects();
    fx.truncateLogAfter(10);
    fx.persist(entry(11, 2, "a"));
    fx.persist(entry(12, 2, "b"));
    fx.truncateLogAfter(11); // op 12 is gone again
    fx.persist(entry(12, 3, "c"));

    assertEquals(OptionalLong.of(10), fx.truncationAfter());
    assertEquals(List.of(entry(11, 2, "a"), entry(12, 3, "c")), fx.toPersist());
    List<Effect> out = fx.toExecute();
    assertEquals(2, out.size(), "one truncation, then one log write");
    assertEquals(new TruncateLogAfter(10), out.get(0));
  }

  @Test
  void shouldDropEveryEntryOfABurstWhenALaterTruncationGoesBelowThem() {
    Effects fx = new Effects();
    fx.persistAll(List.of(entry(5, 1, "a"), entry(6, 1, "b")));
    fx.truncateLogAfter(4);

    assertEquals(List.of(new TruncateLogAfter(4)), fx.toExecute(), "no Persist brings ops 5..6 back");
  }

  @Test
  void shouldWriteAllOfABurstsEntriesInOneWriteWithItsLatestEpoch() {
    Effects fx = new Effects();
    fx.logEpoch(1);
    fx.persist(entry(1, 0, "a"));
    fx.send(2, 0, MessageType.PREPARE_OK, Heartbeat.getDefaultInstance());
    fx.persistAll(List.of(entry(2, 0, "b"), entry(3, 0, "c")));
    fx.truncateLogAfter(3); // drops nothing, but starts epoch 2
    fx.logEpoch(2);

    List<Persist> persists = fx.toExecute().stream().filter(Persist.class::isInstance).map(Persist.class::cast).toList();
    assertEquals(1, persists.size(), "one log write (one fsync) per burst");
    assertEquals(List.of(1L, 2L, 3L), ops(persists.get(0).entries()));
    assertEquals(2, persists.get(0).epoch());
  }

  @Test
  void shouldKeepTheLatestOfEachOneShotAskAndTheEarliestTick() {
    Effects fx = new Effects();
    fx.persistLastNormalView(1);
    fx.caughtUp();
    fx.persistLastNormalView(2);
    fx.truncateLogBefore(100);
    fx.truncateLogBefore(200);
    fx.fetchStateFrom(2);
    fx.fetchStateFrom(3);
    fx.pauseIntake(true);
    fx.pauseIntake(false);
    fx.tickBy(50);
    fx.tickBy(20);
    fx.tickBy(30);

    assertEquals(Optional.of(new PersistLastNormalView(2, true)), fx.lastNormalViewToPersist(),
        "caught up in an earlier step of the burst, still caught up");
    assertEquals(OptionalLong.of(200), fx.truncationBefore());
    assertEquals(3, fx.stateTransferFrom().getAsInt());
    assertEquals(Optional.of(false), fx.intakePaused());
    assertEquals(20, fx.nextTickNs());
  }

  @Test
  void shouldGroupRepliesPerConnectionInTheOrderAsked() {
    Effects fx = new Effects();
    fx.reply(7, response(1));
    fx.reply(8, response(2));
    fx.reply(7, response(3));
    fx.reply(9, response(4));
    fx.reply(8, response(5));

    assertEquals(List.of(new Reply(7, List.of(response(1), response(3))), new Reply(8, List.of(response(2), response(5))),
        new Reply(9, List.of(response(4)))), fx.toExecute());
    assertEquals(List.of(7L, 8L, 7L, 9L, 8L), fx.replies().stream().map(Reply::connectionId).toList(),
        "what the core asked stays one reply each, in order");
  }

  @Test
  void shouldBeEmptyUntilSomethingIsAskedAndAgainAfterClear() {
    Effects fx = new Effects();
    assertTrue(fx.isEmpty());
    fx.tickBy(10);
    fx.logEpoch(3);
    fx.caughtUp();
    assertTrue(fx.isEmpty(), "a tick time, an epoch or caughtUp without a last normal view is nothing to do");
    fx.truncateLogAfter(0);
    assertFalse(fx.isEmpty());

    fx.clear();

    assertTrue(fx.isEmpty());
    assertTrue(fx.asked().isEmpty());
    assertEquals(Long.MAX_VALUE, fx.nextTickNs());
    assertEquals(0, fx.logEpoch());
    fx.persistLastNormalView(1);
    assertEquals(Optional.of(new PersistLastNormalView(1, false)), fx.lastNormalViewToPersist(), "caughtUp is cleared");
  }

  @Test
  void shouldRefuseAsksThatNameNothing() {
    Effects fx = new Effects();
    assertThrows(IllegalArgumentException.class, () -> fx.truncateLogBefore(0));
    assertThrows(IllegalArgumentException.class, () -> fx.truncateLogAfter(-1));
    assertThrows(IllegalArgumentException.class, () -> fx.fetchStateFrom(0));
    assertThrows(UnsupportedOperationException.class, () -> fx.toExecute().clear());
  }
}
