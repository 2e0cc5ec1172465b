package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.MessageLite;
import io.choir.proto.DoViewChange;
import io.choir.proto.Entry;
import io.choir.proto.Fragment;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Put;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.security.DatagramSealer;
import org.junit.jupiter.api.Test;

/** PeerRouting's rule and the bounds that follow from it (issue 9, hole 2e). */
class PeerRoutingTest {
  /** An entry whose serialized size is exactly bytes (a put of a value filling the rest). */
  private static Entry entryOf(long op, int bytes) {
    Entry.Builder b = Entry.newBuilder().setOp(op).setView(Long.MAX_VALUE).setClientId(Long.MAX_VALUE)
        .setRequestId(Long.MAX_VALUE).setFirstIncomplete(Long.MAX_VALUE).setTimeMs(Long.MAX_VALUE);
    int value = bytes - b.build().getSerializedSize() - 16;
    for (int size = Math.max(0, value); ; size++) {
      Entry e = b.setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("k"))
          .setValue(ByteString.copyFrom(new byte[size]))).build();
      if (e.getSerializedSize() >= bytes) {
        return e;
      }
    }
  }

  @Test
  void shouldRouteOnlyUnicastBodiesBiggerThanOneDatagramOverTheStream() {
    int room = 1400 - DatagramHeader.SIZE - DatagramSealer.TAG_BYTES; // a sealed one fits too
    assertEquals(room, PeerRouting.datagramRoom(1400));
    assertFalse(PeerRouting.viaStream(PeerRouting.MULTICAST, 10 << 20, 1400), "multicast stays UDP");
    assertFalse(PeerRouting.viaStream(2, room, 1400), "a body that fits goes by datagram");
    assertTrue(PeerRouting.viaStream(2, room + 1, 1400));
    assertTrue(PeerRouting.viaStream(3, 2 << 20, 65_000));
    assertEquals(PeerRouting.Route.DATAGRAM, PeerRouting.route(0, MessageType.START_VIEW, room, 1400));
    assertEquals(PeerRouting.Route.DATAGRAM, PeerRouting.route(2, MessageType.PREPARE, room, 1400));
    assertEquals(PeerRouting.Route.FRAGMENTS, PeerRouting.route(0, MessageType.PREPARE, room + 1, 1400));
    assertEquals(PeerRouting.Route.STREAM_TO_EACH, PeerRouting.route(0, MessageType.START_VIEW, room + 1, 1400));
    assertEquals(PeerRouting.Route.STREAM, PeerRouting.route(2, MessageType.PREPARE, room + 1, 1400));
    assertEquals(PeerRouting.Route.STREAM, PeerRouting.route(2, MessageType.DO_VIEW_CHANGE, room + 1, 1400));
  }

  @Test
  void shouldReassembleAPrepareOfTheLargestEntryButNothingBigger() {
    int maxBatchBytes = 1 << 20;
    Entry largest = entryOf(Long.MAX_VALUE - 1, maxBatchBytes);
    assertTrue(largest.getSerializedSize() >= maxBatchBytes);
    Prepare p = Prepare.newBuilder().setFirstOp(Long.MAX_VALUE - 1).addEntries(largest)
        .setCommit(Long.MAX_VALUE).build();
    byte[] body = p.toByteArray();
    int cap = PeerRouting.maxReassembledBytes(maxBatchBytes);
    assertTrue(body.length <= cap, body.length + " fits " + cap);
    Reassembler re = new Reassembler(PeerRouting.REASSEMBLY_MESSAGES,
        PeerRouting.maxReassemblyBufferBytes(maxBatchBytes), cap);
    byte[] whole = null;
    for (Fragment f : Reassembler.split(p.getFirstOp(), body, 1300)) {
      byte[] done = re.add(1, 0, f);
      whole = done != null ? done : whole;
    }
    assertArrayEquals(body, whole);
    // The cap no longer equals the window: a message above one entry is refused at its first fragment.
    Fragment tooBig = Reassembler.split(1, new byte[cap + 1], 1300)[0];
    assertNull(re.add(1, 0, tooBig));
    assertEquals(1, re.dropped());
    assertEquals(0, re.pending());
    assertEquals(4L * cap, PeerRouting.maxReassemblyBufferBytes(maxBatchBytes));
  }

  @Test
  void shouldFitAFullWindowSuffixInOneStreamFrame() {
    int window = 4 << 20;
    int ops = 64;
    int maxBatchBytes = 256 << 10;
    int bound = PeerRouting.maxStreamFrameBytes(window, ops, maxBatchBytes);
    // The window's bytes in ops - 1 entries, then the one admitted just below full, at max_batch_bytes.
    // The largest peer message is a PREPARE: a resend packs entries up to one datagram, or one entry
    // alone (at most max_batch_bytes); a whole window of entries in one PREPARE bounds it from above.
    Prepare.Builder r = Prepare.newBuilder().setFirstOp(1)
        .setCommit(Long.MAX_VALUE);
    long bytes = 0;
    for (int i = 0; i < ops - 1; i++) {
      Entry e = entryOf(i + 1, (window - 1) / (ops - 1));
      bytes += e.getSerializedSize();
      r.addEntries(e);
    }
    assertTrue(bytes < window);
    r.addEntries(entryOf(ops, maxBatchBytes));
    PeerEnvelope envelope = PeerEnvelopes.wrap(Long.MAX_VALUE, Integer.MAX_VALUE, Long.MAX_VALUE,
        MessageType.PREPARE, r.build());
    assertTrue(envelope.getSerializedSize() <= bound, envelope.getSerializedSize() + " fits " + bound);
    // Many tiny entries: the framing term covers them.
    Prepare.Builder tiny = Prepare.newBuilder();
    for (int i = 0; i <= ops; i++) {
      tiny.addEntries(Entry.newBuilder().setOp(Long.MAX_VALUE - i));
    }
    assertTrue(PeerEnvelopes.wrap(1, 1, 1, MessageType.PREPARE, tiny.build()).getSerializedSize()
        <= PeerRouting.maxStreamFrameBytes(1024, ops, 1024));
    // Defaults: 64 MiB window, 8,192 ops, 4 MiB batches.
    assertEquals((64 << 20) + (4 << 20) + 16 * 8193 + (64 << 10),
        PeerRouting.maxStreamFrameBytes(64 << 20, 8192, 4 << 20));
  }

  @Test
  void shouldMapEveryCoreMessageToAnEnvelopeAndBack() {
    for (MessageType type : MessageType.values()) {
      if (type == MessageType.UNRECOGNIZED) {
        continue;
      }
      PeerEnvelope empty = PeerEnvelope.newBuilder().build();
      boolean peerMessage = switch (type) {
        case MESSAGE_TYPE_UNKNOWN, STATE_TRANSFER_REQUEST, STATE_TRANSFER_CHUNK, FRAGMENT, TRANSPORT_PROBE -> false;
        default -> true;
      };
      if (!peerMessage) {
        continue;
      }
      MessageLite body = defaultBody(type);
      PeerEnvelope e = PeerEnvelopes.wrap(7, 2, 9, type, body);
      assertEquals(type, PeerEnvelopes.type(e));
      assertEquals(body, PeerEnvelopes.body(e));
      assertEquals(2, e.getSender());
      assertEquals(9, e.getView());
      assertNull(PeerEnvelopes.type(empty));
    }
    assertNull(PeerEnvelopes.type(PeerEnvelope.newBuilder()
        .setFragment(Fragment.getDefaultInstance()).build()), "a fragment never travels on a stream");
  }

  private static MessageLite defaultBody(MessageType type) {
    return switch (type) {
      case PREPARE -> Prepare.newBuilder().setFirstOp(3).build();
      case PREPARE_OK -> PrepareOk.newBuilder().setOp(3).build();
      case HEARTBEAT -> Heartbeat.newBuilder().setCommit(3).build();
      case HEARTBEAT_OK -> HeartbeatOk.newBuilder().setRound(3).build();
      case NACK -> Nack.getDefaultInstance();
      case START_VIEW_CHANGE -> StartViewChange.getDefaultInstance();
      case DO_VIEW_CHANGE -> DoViewChange.newBuilder().setLastOp(3).build();
      case START_VIEW -> StartView.newBuilder().setLastOp(3).build();
      case RECOVERY -> Recovery.newBuilder().setNonce(3).build();
      case RECOVERY_RESPONSE -> RecoveryResponse.newBuilder().setNonce(3).build();
      case PRE_VIEW_CHANGE -> PreViewChange.newBuilder().setView(3).build();
      case PRE_VIEW_CHANGE_OK -> PreViewChangeOk.newBuilder().setView(3).build();
      default -> throw new IllegalArgumentException(type.toString());
    };
  }
}
