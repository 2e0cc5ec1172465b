package io.choir.server.net;

import io.choir.proto.MessageType;
import io.choir.server.security.DatagramCodec;

/**
 * PeerRouting decides how a peer message travels, and the bounds that follow from it (issue 9, hole
 * 2e). Pure and static, so the simulator routes exactly as the transport does.
 *
 * <p>Rule ({@link #route}): a body that fits one datagram (max_datagram_bytes minus the 44-byte
 * header and the 16-byte seal tag) goes by UDP, multicast or unicast. A bigger message to one
 * replica goes as one PeerEnvelope frame over a TCP connection to that replica's peer address (where
 * its StateTransferServer listens). A bigger PREPARE to all goes by multicast as FRAGMENTs (one send reaches every backup; a
 * backup that loses a fragment NACKs, and the resend is unicast, so over TCP). Any other message to
 * all that does not fit a datagram (a START_VIEW that still carries a suffix, say) goes over each
 * other replica's TCP stream instead, so that only PREPAREs are ever fragmented. Why: a unicast
 * resend of a 1 MiB entry is about 750 fragments of 1,400 bytes, and at 20% datagram loss the chance
 * that all of them arrive is about 0.8^750, so a resend over UDP never gets through (and its burst
 * overflows the receive buffer even without loss); TCP repairs its own loss.
 */
public final class PeerRouting {
  /** The destination meaning "every replica" (Effects.MULTICAST). */
  public static final int MULTICAST = 0;

  /**
   * Slack above one entry for the PREPARE around it when it is fragmented: first_op, commit, the
   * entry's tag and length (under 64 bytes; the core's PREPARE_OVERHEAD_BYTES), rounded up to 4 KiB.
   */
  public static final int PREPARE_SLACK_BYTES = 4096;

  /** Partial fragmented messages held at once, at most (each at most maxReassembledBytes). */
  public static final int REASSEMBLY_MESSAGES = 64;

  /** Large partial messages the reassembler holds at once: its byte bound is this many of the largest. */
  public static final int REASSEMBLY_LARGEST_MESSAGES = 4;

  /** Per-entry framing in a suffix (tag and length of each repeated Entry), at most. */
  private static final int ENTRY_FRAMING_BYTES = 16;

  /** The envelope's own fields and slack for a suffix message's other fields. */
  private static final int ENVELOPE_SLACK_BYTES = 64 << 10;

  private PeerRouting() {}

  /** How one message travels. */
  public enum Route {
    /** One UDP datagram (multicast or unicast). */
    DATAGRAM,
    /** UDP multicast FRAGMENTs (a PREPARE to all bigger than a datagram). */
    FRAGMENTS,
    /** One frame over the destination's TCP peer stream. */
    STREAM,
    /** One frame over the TCP peer stream of every other replica (a big non-PREPARE to all). */
    STREAM_TO_EACH,
    /** One unicast datagram to every other replica (a message to all without multicast). */
    DATAGRAM_TO_EACH
  }

  /** The route of a message of type with bodyBytes of body to to (0: every replica). */
  public static Route route(int to, MessageType type, int bodyBytes, int maxDatagramBytes) {
    if (bodyBytes <= datagramRoom(maxDatagramBytes)) {
      return Route.DATAGRAM;
    }
    if (to != MULTICAST) {
      return Route.STREAM;
    }
    return type == MessageType.PREPARE ? Route.FRAGMENTS : Route.STREAM_TO_EACH;
  }

  /**
   * The route of a message to all that goes to each other replica separately (peer_transport
   * unicast, or auto for the peers multicast does not reach): one unicast datagram each when the body
   * fits one, else one frame over each replica's peer stream; never fragments.
   */
  public static Route routeToEach(int bodyBytes, int maxDatagramBytes) {
    return bodyBytes <= datagramRoom(maxDatagramBytes) ? Route.DATAGRAM_TO_EACH : Route.STREAM_TO_EACH;
  }

  /** Bytes of body that fit one datagram after the header and, sealed, the GCM tag. */
  public static int datagramRoom(int maxDatagramBytes) {
    return maxDatagramBytes - DatagramCodec.MAX_OVERHEAD_BYTES;
  }

  /** True when a unicast message to to with bodyBytes of body goes over the peer TCP stream. */
  public static boolean viaStream(int to, int bodyBytes, int maxDatagramBytes) {
    return to != MULTICAST && bodyBytes > datagramRoom(maxDatagramBytes);
  }

  /**
   * The largest fragmented message a receiver reassembles. Only multicast PREPAREs are fragmented now
   * ({@link #route}), and the core packs a PREPARE to one datagram or to one entry alone; an entry is
   * at most max_batch_bytes (the core refuses a write whose entry is bigger). So: max_batch_bytes
   * plus {@link #PREPARE_SLACK_BYTES}.
   */
  public static int maxReassembledBytes(int maxBatchBytes) {
    return (int) Math.min(Integer.MAX_VALUE - 8, (long) maxBatchBytes + PREPARE_SLACK_BYTES);
  }

  /** The reassembler's total byte bound: {@link #REASSEMBLY_LARGEST_MESSAGES} of the largest. */
  public static long maxReassemblyBufferBytes(int maxBatchBytes) {
    return (long) REASSEMBLY_LARGEST_MESSAGES * maxReassembledBytes(maxBatchBytes);
  }

  /**
   * The largest frame a peer stream accepts. The largest unicast message is one that carries a log
   * suffix above the primary's commit (RECOVERY_RESPONSE): the flow-control window bounds those
   * entries to max_in_flight_bytes, plus the one entry (at most max_batch_bytes) admitted while the
   * window was just below full, plus each entry's framing (at most 16 bytes, for at most
   * max_in_flight_ops + 1 entries), plus 64 KiB for the envelope and the message's other fields.
   */
  public static int maxStreamFrameBytes(int maxInFlightBytes, int maxInFlightOps, int maxBatchBytes) {
    long bytes =
        (long) maxInFlightBytes
            + maxBatchBytes
            + (long) ENTRY_FRAMING_BYTES * (maxInFlightOps + 1L)
            + ENVELOPE_SLACK_BYTES;
    return (int) Math.min(Integer.MAX_VALUE - 8, bytes);
  }
}
