package io.choir.server.net;

import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import io.choir.proto.DoViewChange;
import io.choir.proto.Heartbeat;
import io.choir.proto.HeartbeatOk;
import io.choir.proto.MessageType;
import io.choir.proto.Nack;
import io.choir.proto.PreViewChange;
import io.choir.proto.PreViewChangeOk;
import io.choir.proto.Prepare;
import io.choir.proto.PrepareOk;
import io.choir.proto.Recovery;
import io.choir.proto.RecoveryResponse;
import io.choir.proto.StartView;
import io.choir.proto.StartViewChange;
import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;
import java.util.Set;

/**
 * PeerMessageParsers is the one table from a peer message type to the parser of its body, for every
 * type the core receives (FRAGMENT is not one: it is the transport's wrapper of another type). The
 * datagram transport and the simulator's mutator both read it, so a new message type is added once.
 */
public final class PeerMessageParsers {
  private static final Map<MessageType, Parser<? extends MessageLite>> PARSERS = new EnumMap<>(MessageType.class);

  static {
    PARSERS.put(MessageType.PREPARE, Prepare.parser());
    PARSERS.put(MessageType.PREPARE_OK, PrepareOk.parser());
    PARSERS.put(MessageType.HEARTBEAT, Heartbeat.parser());
    PARSERS.put(MessageType.HEARTBEAT_OK, HeartbeatOk.parser());
    PARSERS.put(MessageType.NACK, Nack.parser());
    PARSERS.put(MessageType.START_VIEW_CHANGE, StartViewChange.parser());
    PARSERS.put(MessageType.DO_VIEW_CHANGE, DoViewChange.parser());
    PARSERS.put(MessageType.START_VIEW, StartView.parser());
    PARSERS.put(MessageType.RECOVERY, Recovery.parser());
    PARSERS.put(MessageType.RECOVERY_RESPONSE, RecoveryResponse.parser());
    PARSERS.put(MessageType.PRE_VIEW_CHANGE, PreViewChange.parser());
    PARSERS.put(MessageType.PRE_VIEW_CHANGE_OK, PreViewChangeOk.parser());
  }

  private PeerMessageParsers() {}

  /** The parser of type's body, or null when the core receives no such type. */
  public static Parser<? extends MessageLite> parser(MessageType type) {
    return type == null ? null : PARSERS.get(type);
  }

  /** Every type the core receives, in enum order. */
  public static Set<MessageType> types() {
    return Collections.unmodifiableSet(PARSERS.keySet());
  }
}
