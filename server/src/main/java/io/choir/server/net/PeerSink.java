package io.choir.server.net;

import com.google.protobuf.MessageLite;
import io.choir.proto.MessageType;

/** PeerSink takes checked, parsed peer messages from the transport to the thread that owns the core. */
public interface PeerSink {
  /** Hands over one message; returns false when the bounded queue is full (the datagram is dropped). */
  boolean offerPeer(int from, long view, MessageType type, MessageLite body);
}
