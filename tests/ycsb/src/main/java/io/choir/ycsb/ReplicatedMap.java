package io.choir.ycsb;

import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jgroups.Address;
import org.jgroups.JChannel;
import org.jgroups.blocks.MethodCall;
import org.jgroups.blocks.ReplicatedHashMap;
import org.jgroups.util.Rsp;
import org.jgroups.util.RspList;

/**
 * ReplicatedMap is JGroups' {@link ReplicatedHashMap} of String to byte[] (over a {@link
 * JGroupsNode.ContentMap}) with blocking updates, whose acknowledged writes also say whether every member
 * applied them. ReplicatedHashMap's own put with blocking updates multicasts the same call and waits for
 * every member's answer, but returns alike when an answer timed out or its member was suspected;
 * {@link #putAcked}, {@link #removeAcked} and {@link #replaceAcked} send the very calls ReplicatedHashMap
 * sends (its {@code _put}, {@code _remove} and {@code _replace}, found by name in its method table) through
 * its dispatcher with its options, and throw when an answer is missing. Reads ({@link #get}) are the local
 * copy's.
 *
 * <p>Order: JGroups delivers one member's multicasts to every member in the order it sent them (NAKACK2),
 * so all members apply the writes of one member in one order, and the conditional replace, evaluated at
 * each member, has the same outcome everywhere; writes to one key from two members may be applied in
 * different orders (this stack has no total order). In the benchmark only the YCSB process writes.
 */
final class ReplicatedMap extends ReplicatedHashMap<String, byte[]> {
  private static final short PUT = idOf("_put", 2);
  private static final short REMOVE = idOf("_remove", 1);
  private static final short REPLACE_IF_EQUALS = idOf("_replace", 3);

  private volatile int required;

  ReplicatedMap(JChannel channel, long timeoutMs) {
    super(new JGroupsNode.ContentMap(), channel);
    setBlockingUpdates(true);
    setTimeout(timeoutMs);
  }

  /** From now on a write fails unless at least members members applied it (0, the default: any view). */
  void requireMembers(int members) {
    required = members;
  }

  private static short idOf(String name, int params) {
    for (Map.Entry<Short, Method> e : methods.entrySet()) {
      if (e.getValue().getName().equals(name) && e.getValue().getParameterCount() == params) {
        return e.getKey();
      }
    }
    throw new IllegalStateException("ReplicatedHashMap has no " + name + " of " + params + " parameters");
  }

  /** Writes key on every member; returns once each applied it. */
  void putAcked(String key, byte[] value) {
    call(new MethodCall(PUT, key, value));
  }

  /** Deletes key on every member; whether this member held it. */
  boolean removeAcked(String key) {
    return call(new MethodCall(REMOVE, key)).getValue(local()) != null;
  }

  /** Writes value on every member whose key still holds expected (by contents); whether this member did. */
  boolean replaceAcked(String key, byte[] expected, byte[] value) {
    RspList<Object> rsps = call(new MethodCall(REPLACE_IF_EQUALS, key, expected, value));
    Object here = rsps.getValue(local());
    for (Rsp<Object> r : rsps) {
      if (!here.equals(r.getValue())) {
        throw new IllegalStateException("members disagree on a conditional write of " + key + ": " + rsps);
      }
    }
    return (Boolean) here;
  }

  private Address local() {
    return getChannel().getAddress();
  }

  /** Each member's answer, by member; throws when one is missing (the write's outcome is then unknown). */
  private RspList<Object> call(MethodCall call) {
    RspList<Object> rsps;
    try {
      rsps = disp.callRemoteMethods(null, call, call_options);
    } catch (Exception e) {
      throw new IllegalStateException("unavailable: " + e, e);
    }
    List<String> silent = new ArrayList<>();
    for (Map.Entry<Address, Rsp<Object>> e : rsps.entrySet()) {
      Rsp<Object> r = e.getValue();
      if (r.hasException()) {
        throw new IllegalStateException("member " + e.getKey() + " failed the write: " + r.getException(),
            r.getException());
      }
      if (!r.wasReceived()) {
        silent.add(e.getKey() + (e.getKey().equals(local()) ? " (this member)" : "")
            + (r.wasSuspected() ? " (suspected)" : "") + (r.wasUnreachable() ? " (unreachable)" : ""));
      }
    }
    if (!silent.isEmpty()) {
      throw new IllegalStateException("timeout: no answer in " + getTimeout() + " ms from " + silent + " of view "
          + getChannel().getView() + " (outcome unknown)");
    }
    if (rsps.size() < required) {
      throw new IllegalStateException("unavailable: the write reached " + rsps.size() + " members, fewer than "
          + required + " (view " + getChannel().getView() + "; those members applied it)");
    }
    if (!rsps.containsKey(local())) {
      throw new IllegalStateException("unavailable: this member is not in the view " + getChannel().getView());
    }
    return rsps;
  }
}
