package io.choir.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.OpRange;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Put;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * PeerMessageChecks one field at a time (issue 10, item 5): each reason with the smallest message that
 * has it, the boundaries (the highest number accepted and the next one), and the messages a healthy
 * replica sends, which must all pass.
 */
class PeerMessageChecksTest {
  private static final long MAX = PeerMessageChecks.MAX_NUMBER;
  private final CoreConfig config = CoreKit.config(1, 3);
  private final PeerMessageChecks checks = new PeerMessageChecks(config, new RequestValidator(config));

  private boolean admit(long view, MessageType type, MessageLite body) {
    return checks.admit(new Event.Peer(2, view, type, body), 5);
  }

  private long count(String reason) {
    return checks.counts().get(reason);
  }

  private static Prepare prepare(long first, long commit, Entry... entries) {
    return Prepare.newBuilder().setFirstOp(first).setCommit(commit).addAllEntries(List.of(entries)).build();
  }

  @Test
  void shouldAdmitWhatAHealthyReplicaSends() {
    assertTrue(admit(5, MessageType.PREPARE, prepare(3, 2, CoreKit.entry(3, 5, "a"), CoreKit.entry(4, 4, "b"))));
    assertTrue(admit(5, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(9).setCommit(9).setLowWatermark(10).build()));
    assertTrue(admit(6, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder().setLastNormalView(5).setLastOp(9)
        .setCommit(4).setLogFirstOp(5).build()));
    assertTrue(admit(6, MessageType.START_VIEW, StartView.newBuilder().setLastOp(9).setCommit(9).build()));
    assertTrue(admit(5, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(6).build()));
    assertTrue(admit(4, MessageType.PRE_VIEW_CHANGE_OK, PreViewChangeOk.newBuilder().setView(6).build()));
    assertTrue(admit(5, MessageType.NACK, Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(1).setLast(MAX)).build()));
    assertTrue(admit(5, MessageType.RECOVERY_RESPONSE, RecoveryResponse.newBuilder().setNonce(-7).build()));
    assertTrue(admit(5, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()));
    assertTrue(admit(5 + PeerMessageChecks.MAX_VIEW_AHEAD, MessageType.START_VIEW_CHANGE,
        StartViewChange.getDefaultInstance()), "the farthest view followed");
    assertEquals(0, checks.total());
  }

  @Test
  void shouldDropViewsOutOfRangeOrTooFarAhead() {
    assertFalse(admit(-1, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()));
    assertFalse(admit(MAX + 1, MessageType.START_VIEW_CHANGE, StartViewChange.getDefaultInstance()));
    assertEquals(2, count("view_out_of_range"));
    assertFalse(admit(6 + PeerMessageChecks.MAX_VIEW_AHEAD, MessageType.START_VIEW_CHANGE,
        StartViewChange.getDefaultInstance()));
    assertEquals(1, count("view_too_far_ahead"));
  }

  @Test
  void shouldDropABodyOfAnotherType() {
    assertFalse(admit(5, MessageType.PREPARE, Heartbeat.getDefaultInstance()));
    assertEquals(1, count("body_type"));
  }

  @Test
  void shouldDropPreparesWithOpsCommitsOrEntriesOutOfRange() {
    assertFalse(admit(5, MessageType.PREPARE, prepare(0, 0, CoreKit.entry(0, 5, "a"))));
    assertFalse(admit(5, MessageType.PREPARE, prepare(-1, 0, CoreKit.entry(-1, 5, "a"))));
    assertEquals(2, count("op_out_of_range"));
    assertFalse(admit(5, MessageType.PREPARE, prepare(3, -1, CoreKit.entry(3, 5, "a"))));
    assertEquals(1, count("commit_beyond_op"));
    assertFalse(admit(5, MessageType.PREPARE, prepare(3, 0, CoreKit.entry(3, 5, "a"), CoreKit.entry(5, 5, "b"))));
    assertFalse(admit(5, MessageType.PREPARE, prepare(3, 0, CoreKit.entry(3, 6, "a"))), "an entry of a later view");
    assertEquals(2, count("entries_malformed"));
    assertFalse(admit(5, MessageType.PREPARE, prepare(3, 0, CoreKit.entry(3, 5, "a").toBuilder().setTimeMs(-1).build())));
    Entry tooBig = CoreKit.entry(3, 5, "a").toBuilder().setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k"))
        .setValue(ByteString.copyFrom(new byte[config.maxValueBytes + 1]))).build();
    assertFalse(admit(5, MessageType.PREPARE, prepare(3, 0, tooBig)), "a value no client could write");
    assertEquals(2, count("entry_invalid"));
  }

  @Test
  void shouldDropCommitsBeyondTheMessagesOwnLastOp() {
    assertFalse(admit(5, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(3).setCommit(4).build()));
    assertFalse(admit(5, MessageType.START_VIEW, StartView.newBuilder().setLastOp(3).setCommit(1_000_000).build()));
    assertFalse(admit(6, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder().setLastOp(10).setCommit(1_000_000).build()));
    assertFalse(admit(5, MessageType.RECOVERY_RESPONSE, RecoveryResponse.newBuilder().setLastOp(1).setCommit(2).build()));
    assertEquals(4, count("commit_beyond_op"));
    assertFalse(admit(5, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(MAX + 1).setCommit(0).build()));
    assertEquals(1, count("op_out_of_range"));
    assertFalse(admit(5, MessageType.HEARTBEAT, Heartbeat.newBuilder().setLastOp(3).setLowWatermark(5).build()));
    assertEquals(1, count("watermark_beyond_op"));
  }

  @Test
  void shouldDropDoViewChangesOfANormalViewNotBeforeTheirOwn() {
    assertFalse(admit(6, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder().setLastNormalView(6).build()));
    assertFalse(admit(6, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder().setLastNormalView(-1).build()));
    assertFalse(admit(6, MessageType.DO_VIEW_CHANGE, DoViewChange.newBuilder().setLastOp(9).setCommit(3)
        .setLogFirstOp(5).build()), "a log that starts beyond its commit + 1");
    assertEquals(3, count("view_change_malformed"));
  }

  @Test
  void shouldDropPreVotesForAnyViewButTheNextOne() {
    assertFalse(admit(5, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(7).build()));
    assertFalse(admit(5, MessageType.PRE_VIEW_CHANGE, PreViewChange.newBuilder().setView(Long.MIN_VALUE).build()));
    assertFalse(admit(5, MessageType.PRE_VIEW_CHANGE_OK, PreViewChangeOk.newBuilder().setView(5).build()));
    assertFalse(checks.admit(new Event.Peer(2, MAX, MessageType.PRE_VIEW_CHANGE,
        PreViewChange.newBuilder().setView(MAX + 1).build()), MAX), "no view beyond the highest");
    assertEquals(4, count("pre_vote_malformed"));
  }

  @Test
  void shouldDropNacksWithNoTooManyInvertedOrHugeRanges() {
    OpRange ok = OpRange.newBuilder().setFirst(1).setLast(2).build();
    assertFalse(admit(5, MessageType.NACK, Nack.getDefaultInstance()));
    Nack.Builder many = Nack.newBuilder();
    for (int i = 0; i <= config.maxNackRanges; i++) {
      many.addRanges(ok);
    }
    assertFalse(admit(5, MessageType.NACK, many.build()));
    assertFalse(admit(5, MessageType.NACK, Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(5).setLast(4)).build()));
    assertFalse(admit(5, MessageType.NACK, Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(0).setLast(4)).build()));
    assertFalse(admit(5, MessageType.NACK, Nack.newBuilder().addRanges(OpRange.newBuilder().setFirst(1).setLast(-1)).build()));
    assertEquals(5, count("nack_malformed"));
  }

  @Test
  void shouldDropAcknowledgementsOfWhatWasNeverSent() {
    Event.Peer ok = new Event.Peer(2, 5, MessageType.PREPARE_OK, PrepareOk.newBuilder().setOp(11).build());
    assertFalse(checks.ackWithin(ok, 11, 0, 10, 3));
    assertFalse(checks.ackWithin(ok, 10, 4, 10, 3));
    assertTrue(checks.ackWithin(ok, 10, 3, 10, 3));
    assertEquals(2, count("ack_beyond_sent"));
    assertFalse(admit(5, MessageType.HEARTBEAT_OK, HeartbeatOk.newBuilder().setOp(-3).build()));
    assertEquals(1, count("op_out_of_range"));
  }

  @Test
  void shouldDropEntriesBeyondTheBufferOrAgainstTheCommittedPrefix() {
    LogWindow window = new LogWindow(0);
    for (int op = 1; op <= 4; op++) {
      window.append(CoreKit.entry(op, 5, "k" + op));
    }
    Prepare beyond = prepare(4 + config.maxOutOfOrderEntries + 1, 0, CoreKit.entry(4 + config.maxOutOfOrderEntries + 1, 5, "x"));
    Event.Peer p = new Event.Peer(1, 5, MessageType.PREPARE, beyond);
    assertFalse(checks.entriesFit(p, beyond, 4, 3, window));
    assertEquals(1, count("op_beyond_window"));
    Prepare other = prepare(3, 0, CoreKit.entry(3, 5, "not k3"));
    assertFalse(checks.entriesFit(p, other, 4, 3, window));
    assertTrue(checks.entriesFit(p, prepare(3, 0, CoreKit.entry(3, 5, "k3")), 4, 3, window), "a true resend");
    assertTrue(checks.entriesFit(p, prepare(4, 0, CoreKit.entry(4, 5, "other")), 4, 3, window),
        "above commit an entry may differ (a new view replaces it)");
    assertEquals(1, count("contradicts_commit"));
  }
}
