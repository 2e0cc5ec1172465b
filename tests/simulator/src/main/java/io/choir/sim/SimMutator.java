package io.choir.sim;

import io.choir.server.net.PeerMessageParsers;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.MessageLite;
import com.google.protobuf.TextFormat;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.OpRange;
import io.choir.proto.Prepare;
import io.choir.server.core.Event;
import io.choir.server.core.ReplicaCore;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * SimMutator changes real peer messages in flight, as a broken or hostile member would send them
 * (issue 10, items 5 and 8): the message-level fuzz of the simulator. A mutated message is delivered
 * as if from a member, so it passes every check the transport makes (sealing included); what stands
 * between it and the replica is the core's PeerMessageChecks. Two kinds, chosen per message:
 *
 * <ul>
 *   <li>field level: one field (the header's view, type or sender, or any number, list or byte string
 *       of the body, entries' op numbers included) set to an extreme: 0, -1 (2^64 - 1 as uint64),
 *       Long.MAX_VALUE, the value + 2^40, + 1, - 1, a random number; a list emptied, an element
 *       repeated, a huge or inverted NACK range added; the sender swapped for another member;</li>
 *   <li>byte level: the body serialized, bits flipped, bytes overwritten, cut short or extended, and
 *       parsed again with the type's parser (as the transport does); dropped when it does not parse.</li>
 * </ul>
 *
 * <p>What it does not do, and why: change what an entry says at its op (a PREPARE whose entries differ
 * from the real ones at the same op numbers, or real entries passed off under another view or sender).
 * That is the forged-PREPARE attack, which no check of the receiver can tell from the truth (VR trusts
 * members); the cluster key's seal stops it (item 2), and a fuzz that did it could only report a split
 * that the protocol never claimed to prevent. Such a mutation is replaced by the original message
 * (counted as {@code excluded}). Everything else, plausible lies about views, ops and commits
 * included, is delivered: the run then checks that no replica fails and memory stays bounded, and once
 * mutation stops, that the cluster converges and serves (linearizability is not required of a run with
 * lying members).
 */
final class SimMutator {

  private static final MessageType[] TYPES = PeerMessageParsers.types().toArray(new MessageType[0]);

  private static final boolean TRACE = Boolean.getBoolean("choir.sim.fuzz.trace");
  private final SplittableRandom random;
  private final double rate;
  private final int replicas;
  /**
   * True: every mutation is delivered, plausible lies included (a run then checks only that nothing
   * fails, memory stays bounded and the cluster serves again). False: only mutations the receiver's
   * checks reject are delivered, the others are replaced by the original (counted as excluded), and the
   * run must converge to equal checksums.
   */
  final boolean lies;
  /** Mutation goes on while this is true (the run turns it off when the clients are done). */
  boolean on = true;
  long seen;
  long fieldMutations;
  long byteMutations;
  long unparseable;
  long excluded;

  SimMutator(long seed, double rate, int replicas, boolean lies) {
    this.lies = lies;
    this.random = new SplittableRandom(seed ^ 0x6D757461L);
    this.rate = rate;
    this.replicas = replicas;
  }

  long mutated() {
    return fieldMutations + byteMutations;
  }

  /** The message as it arrives: p itself, a mutated copy, or null (a mutation that does not parse). */
  Event.Peer inFlight(ReplicaCore target, Event.Peer p) {
    seen++;
    if (!on || random.nextDouble() >= rate || PeerMessageParsers.parser(p.type()) == null) {
      return p;
    }
    Event.Peer m;
    String kinds = System.getProperty("choir.sim.fuzz.kinds", "both");
    boolean fields = kinds.equals("both") ? random.nextBoolean() : kinds.equals("fields");
    if (fields) {
      m = mutateFields(p);
      if (m == null) {
        return p;
      }
      fieldMutations++;
    } else {
      m = mutateBytes(p);
      byteMutations++;
      if (m == null) {
        unparseable++;
        return null;
      }
    }
    if (!keepsEntries(p, m) || !lies && target != null && target.wouldAdmit(m)) {
      excluded++;
      return p;
    }
    if (TRACE) {
      System.out.println("MUTATE " + p.type() + " " + p.from() + "@" + p.view() + " " + shortText(p.body()) + "  ->  "
          + m.type() + " " + m.from() + "@" + m.view() + " " + shortText(m.body()));
    }
    return m;
  }

  // ------------------------------------------------------------------ field level

  private long extreme(long value) {
    return switch (random.nextInt(9)) {
      case 0 -> 0;
      case 1 -> -1;
      case 2 -> Long.MAX_VALUE;
      case 3 -> value + (1L << 40);
      case 4 -> value + 1;
      case 5 -> value - 1;
      case 6 -> Long.MIN_VALUE;
      case 7 -> 1L << 62;
      default -> random.nextLong();
    };
  }

  private Event.Peer mutateFields(Event.Peer p) {
    switch (random.nextInt(6)) {
      case 0 -> {
        return new Event.Peer(p.from(), extreme(p.view()), p.type(), p.body());
      }
      case 1 -> {
        int other = 1 + random.nextInt(replicas);
        return new Event.Peer(other, p.view(), p.type(), p.body());
      }
      case 2 -> {
        // Another type: the same body bytes parsed as another message, as a flipped type byte would be.
        MessageType t = TYPES[random.nextInt(TYPES.length)];
        MessageLite body = parse(t, p.body().toByteString());
        return body == null ? null : new Event.Peer(p.from(), p.view(), t, body);
      }
      default -> {
        if (!(p.body() instanceof Message msg)) {
          return null;
        }
        Message mutated = mutateMessage(msg, 0);
        return mutated == null ? null : new Event.Peer(p.from(), p.view(), p.type(), mutated);
      }
    }
  }

  /** One field of msg (or of a message within it) changed; null when msg has no field to change. */
  private Message mutateMessage(Message msg, int depth) {
    List<FieldDescriptor> fields = msg.getDescriptorForType().getFields();
    if (fields.isEmpty() || depth > 3) {
      return null;
    }
    FieldDescriptor f = fields.get(random.nextInt(fields.size()));
    Message.Builder b = msg.toBuilder();
    if (f.isRepeated()) {
      int count = msg.getRepeatedFieldCount(f);
      int what = random.nextInt(4);
      if (what == 0 || count == 0 && f.getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
        b.clearField(f);
      } else if (what == 1 && count > 0) {
        b.addRepeatedField(f, msg.getRepeatedField(f, random.nextInt(count))); // a repeated element
      } else if (what == 2 && f.getMessageType() != null && f.getMessageType().equals(OpRange.getDescriptor())) {
        long a = extreme(random.nextLong(1000));
        b.addRepeatedField(f, OpRange.newBuilder().setFirst(random.nextBoolean() ? 1 : a)
            .setLast(random.nextBoolean() ? Long.MAX_VALUE : a - 5).build()); // huge or inverted
      } else if (count > 0 && f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
        int i = random.nextInt(count);
        Message element = (Message) msg.getRepeatedField(f, i);
        Message changed = element instanceof Entry e ? mutateEntryOp(e) : mutateMessage(element, depth + 1);
        if (changed == null) {
          return null;
        }
        b.setRepeatedField(f, i, changed);
      } else {
        b.clearField(f);
      }
      return b.build();
    }
    switch (f.getJavaType()) {
      case LONG -> b.setField(f, extreme((Long) msg.getField(f)));
      case INT -> b.setField(f, (int) extreme((Integer) msg.getField(f)));
      case BOOLEAN -> b.setField(f, !(Boolean) msg.getField(f));
      case BYTE_STRING -> {
        ByteString s = (ByteString) msg.getField(f);
        b.setField(f, random.nextBoolean() ? ByteString.EMPTY
            : s.concat(ByteString.copyFrom(new byte[1 + random.nextInt(4096)])));
      }
      case MESSAGE -> {
        if (!msg.hasField(f)) {
          return null;
        }
        Message changed = mutateMessage((Message) msg.getField(f), depth + 1);
        if (changed == null) {
          return null;
        }
        b.setField(f, changed);
      }
      default -> {
        return null;
      }
    }
    return b.build();
  }

  /** An entry's op number changed (what an entry says is left alone: see the class comment). */
  private Entry mutateEntryOp(Entry e) {
    return e.toBuilder().setOp(extreme(e.getOp())).build();
  }

  // ------------------------------------------------------------------ byte level

  private Event.Peer mutateBytes(Event.Peer p) {
    byte[] bytes = p.body().toByteArray();
    int kind = random.nextInt(4);
    if (kind == 0 && bytes.length > 0) { // flip one to eight bits
      for (int i = 1 + random.nextInt(8); i > 0; i--) {
        int at = random.nextInt(bytes.length);
        bytes[at] ^= (byte) (1 << random.nextInt(8));
      }
    } else if (kind == 1 && bytes.length > 0) { // overwrite a byte with an extreme one
      bytes[random.nextInt(bytes.length)] = (byte) (random.nextBoolean() ? 0xFF : (random.nextBoolean() ? 0x80 : 0));
    } else if (kind == 2 && bytes.length > 0) { // cut short
      bytes = Arrays.copyOf(bytes, random.nextInt(bytes.length));
    } else { // extended with random bytes
      byte[] more = new byte[1 + random.nextInt(64)];
      random.nextBytes(more);
      byte[] longer = Arrays.copyOf(bytes, bytes.length + more.length);
      System.arraycopy(more, 0, longer, bytes.length, more.length);
      bytes = longer;
    }
    MessageLite body = parse(p.type(), ByteString.copyFrom(bytes));
    return body == null ? null : new Event.Peer(p.from(), p.view(), p.type(), body);
  }

  private static String shortText(MessageLite m) {
    String t = TextFormat.shortDebugString((Message) m);
    return t.length() > 160 ? t.substring(0, 160) + "..." : t;
  }

  private static MessageLite parse(MessageType type, ByteString bytes) {
    try {
      return PeerMessageParsers.parser(type).parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      return null;
    }
  }

  // ------------------------------------------------------------------ the rule on entries

  /**
   * True when the mutation m of p leaves alone what entries say at their op (see the class comment):
   * m carries no entries, or the same entries under the same view and sender, or entries whose op
   * numbers do not run on from the PREPARE's first op (a malformed PREPARE, which the receiver drops
   * whole).
   */
  private static boolean keepsEntries(Event.Peer p, Event.Peer m) {
    if (m.type() != MessageType.PREPARE || ((Prepare) m.body()).getEntriesCount() == 0) {
      return true;
    }
    Prepare mp = (Prepare) m.body();
    for (int i = 0; i < mp.getEntriesCount(); i++) {
      if (mp.getEntries(i).getOp() != mp.getFirstOp() + i) {
        return true; // malformed: dropped whole by the receiver
      }
    }
    if (p.type() != MessageType.PREPARE) {
      return false;
    }
    Prepare pp = (Prepare) p.body();
    boolean sameHeader = p.from() == m.from() && (p.view() == m.view() || m.view() < 0
        || m.view() > (1L << 62) || Math.abs(m.view() - p.view()) >= (1L << 32));
    return sameHeader && pp.getEntriesList().equals(mp.getEntriesList()) && pp.getFirstOp() == mp.getFirstOp();
  }
}
