package io.choir.client;

import com.google.protobuf.ByteString;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Delete;
import io.choir.proto.Get;
import io.choir.proto.ListMembers;
import io.choir.proto.MemberChange;
import io.choir.proto.Put;
import io.choir.proto.Request;
import io.choir.proto.Scan;
import io.choir.proto.StatusRequest;
import java.nio.charset.StandardCharsets;

/**
 * Requests validates arguments and builds the operation part of a {@link Request}; the dispatcher adds
 * the ids. Validation is cheap and local so a programming error fails fast with
 * IllegalArgumentException instead of a round trip that ends in INVALID.
 */
final class Requests {
  private Requests() {}

  static ByteString key(byte[] key) {
    if (key == null || key.length == 0) {
      throw new IllegalArgumentException("key must not be null or empty");
    }
    return ByteString.copyFrom(key);
  }

  static ByteString value(byte[] value, String name) {
    if (value == null) {
      throw new IllegalArgumentException(name + " must not be null");
    }
    return ByteString.copyFrom(value);
  }

  static byte[] utf8(String s, String name) {
    if (s == null) {
      throw new IllegalArgumentException(name + " must not be null");
    }
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static Request get(byte[] key, ReadConsistency consistency) {
    return Request.newBuilder()
        .setConsistency(consistency(consistency).toProto())
        .setGet(Get.newBuilder().setKey(key(key)))
        .build();
  }

  static Request put(byte[] key, byte[] value) {
    return Request.newBuilder()
        .setPut(Put.newBuilder().setKey(key(key)).setValue(value(value, "value")))
        .build();
  }

  static Request delete(byte[] key) {
    return Request.newBuilder().setDelete(Delete.newBuilder().setKey(key(key))).build();
  }

  static CompareAndSet casOnValue(byte[] key, byte[] expectedValue, byte[] newValue) {
    return CompareAndSet.newBuilder()
        .setKey(key(key))
        .setExpectedValue(value(expectedValue, "expectedValue (use putIfAbsent to expect absence)"))
        .setNewValue(value(newValue, "newValue"))
        .build();
  }

  static CompareAndSet casOnVersion(byte[] key, long expectedVersion, byte[] newValue) {
    if (expectedVersion <= 0) {
      throw new IllegalArgumentException(
          "expectedVersion must be positive (use putIfAbsent to expect absence): " + expectedVersion);
    }
    return CompareAndSet.newBuilder()
        .setKey(key(key))
        .setExpectedVersion(expectedVersion)
        .setNewValue(value(newValue, "newValue"))
        .build();
  }

  static CompareAndSet casAbsent(byte[] key, byte[] value) {
    return CompareAndSet.newBuilder()
        .setKey(key(key))
        .setExpectAbsent(true)
        .setNewValue(value(value, "value"))
        .build();
  }

  static Request cas(CompareAndSet cas) {
    return Request.newBuilder().setCompareAndSet(cas).build();
  }

  static Request scan(byte[] startKey, byte[] endKey, int limit, ReadConsistency consistency) {
    if (startKey == null) {
      throw new IllegalArgumentException("startKey must not be null (use an empty array for the start)");
    }
    if (limit < 0) {
      throw new IllegalArgumentException("limit must be >= 0 (0 means the server's default): " + limit);
    }
    return Request.newBuilder()
        .setConsistency(consistency(consistency).toProto())
        .setScan(Scan.newBuilder()
            .setStartKey(ByteString.copyFrom(startKey))
            .setEndKey(endKey == null ? ByteString.EMPTY : ByteString.copyFrom(endKey))
            .setLimit(limit))
        .build();
  }

  static Request batch(Batch batch) {
    if (batch == null) {
      throw new IllegalArgumentException("batch must not be null");
    }
    // The proto's Batch is named in full: this package's own Batch (the public builder of one) has its name.
    return Request.newBuilder()
        .setBatch(io.choir.proto.Batch.newBuilder().addAllOps(batch.ops()))
        .build();
  }

  static Request status() {
    return Request.newBuilder().setStatus(StatusRequest.getDefaultInstance()).build();
  }

  static Request listMembers() {
    return Request.newBuilder().setListMembers(ListMembers.getDefaultInstance()).build();
  }

  static Request addLearner(int id, String clientAddress, String peerAddress, long expectedEpoch) {
    return memberChange(change(MemberChange.Kind.ADD_LEARNER, id, expectedEpoch)
        .setClientAddress(address(clientAddress, "clientAddress"))
        .setPeerAddress(address(peerAddress, "peerAddress")));
  }

  static Request promote(int id, long expectedEpoch) {
    return memberChange(change(MemberChange.Kind.PROMOTE, id, expectedEpoch));
  }

  static Request removeMember(int id, long expectedEpoch) {
    return memberChange(change(MemberChange.Kind.REMOVE, id, expectedEpoch));
  }

  static Request replaceMember(int oldId, int newId, long expectedEpoch) {
    if (oldId == newId) {
      throw new IllegalArgumentException("a member cannot replace itself: " + oldId);
    }
    return memberChange(change(MemberChange.Kind.REPLACE, newId, expectedEpoch).setReplacedId(memberId(oldId)));
  }

  private static Request memberChange(MemberChange.Builder change) {
    return Request.newBuilder().setMemberChange(change).build();
  }

  private static MemberChange.Builder change(MemberChange.Kind kind, int id, long expectedEpoch) {
    if (expectedEpoch < 0) {
      throw new IllegalArgumentException("expectedEpoch must be >= 0 (0: any epoch): " + expectedEpoch);
    }
    return MemberChange.newBuilder().setKind(kind).setId(memberId(id)).setExpectedEpoch(expectedEpoch);
  }

  /** A replica id: 1..255, as the replicas' configuration accepts them. */
  static int memberId(int id) {
    if (id < 1 || id > MAX_MEMBER_ID) {
      throw new IllegalArgumentException("a member id must be in 1.." + MAX_MEMBER_ID + ": " + id);
    }
    return id;
  }

  /** The highest replica id (the replica_id setting's range). */
  static final int MAX_MEMBER_ID = 255;

  private static String address(String address, String name) {
    if (address == null) {
      throw new IllegalArgumentException(name + " must not be null");
    }
    return Endpoint.parse(address).toString();
  }

  private static ReadConsistency consistency(ReadConsistency consistency) {
    if (consistency == null) {
      throw new IllegalArgumentException("consistency must not be null");
    }
    return consistency;
  }
}
