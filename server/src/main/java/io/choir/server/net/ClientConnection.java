package io.choir.server.net;

import io.choir.proto.Request;
import io.choir.server.metrics.RequestTimes;
import io.choir.server.watch.WatchOutput;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import java.net.InetAddress;
import java.util.ArrayDeque;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * ClientConnection is the state {@link ClientConnections} keeps for one open client connection: what
 * it has in flight, its reply bytes not yet taken by the socket, its deferred reads and its frame
 * decoder (to resume when it may be read again). Fields without atomics are touched on the
 * connection's event loop only; the reply bytes are counted with an atomic, because replies are
 * computed on the read pool and the replica thread.
 */
final class ClientConnection {
  final long id;
  final Channel channel;
  final InetAddress address;
  /** Requests decoded and not yet answered. */
  int inFlight;
  /** Reply bytes computed and not yet taken by the socket. */
  final AtomicLong replyBytes = new AtomicLong();
  /** Reads handed to the read pool whose reply has not reached the event loop yet. */
  int readsRunning;
  /**
   * The size of the reply the first deferred read came to when it was computed and found no room (0
   * when none): the estimate that keeps it from being computed again before there is room for it.
   */
  long needBytes;
  /** Reads released by the core, waiting until this connection's replies drain. */
  final ArrayDeque<Request> deferredReads = new ArrayDeque<>();
  /**
   * Reads the core released (any thread) that the event loop has not taken into deferredReads yet:
   * one event-loop task takes all that arrived meanwhile, rather than one task per read.
   */
  final ConcurrentLinkedQueue<Request> arrivingReads = new ConcurrentLinkedQueue<>();
  /** True while a task that takes arrivingReads is queued on the event loop. */
  final AtomicBoolean takingReads = new AtomicBoolean();
  /** Its entry among the connections waiting for the replica-wide total ({@link ReplyBudget}), if any. */
  ReplyBudget.Waiter waiter;
  /** When its reads and writes in flight were decoded, for the latency timers (null: untimed, tests). */
  RequestTimes times;
  /** Where its watches' Responses go, once it has sent a watch ({@link WatchRequests}); else null. */
  WatchOutput watchOutput;
  /** Set when the connection is being closed for bad input: nothing more of it is decoded. */
  boolean closing;
  /** Its frame decoder and that decoder's context in the pipeline (null when it has none: tests). */
  final ClientFrameDecoder decoder;
  final ChannelHandlerContext decoderContext;

  ClientConnection(long id, Channel channel, InetAddress address, ChannelHandlerContext decoderContext) {
    this.id = id;
    this.channel = channel;
    this.address = address;
    this.decoderContext = decoderContext;
    this.decoder = decoderContext == null ? null : (ClientFrameDecoder) decoderContext.handler();
  }
}
