package io.choir.ycsb;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Properties;
import site.ycsb.DBException;
import site.ycsb.Status;

/**
 * JGroupsYcsbClient is the same binding for JGroups' ReplicatedHashMap ({@code -db
 * io.choir.ycsb.JGroupsYcsbClient}): the YCSB process joins the cluster as a member itself (there are no
 * clients of a ReplicatedHashMap, only members), receives the map's state, and waits until the view has
 * {@code jgroups.members} members (default 3: this process and two {@link JGroupsMember} processes).
 * A write is multicast to every member and returns once each applied it to its memory (blocking updates:
 * nothing reaches a disk); it fails when a member did not answer within {@code jgroups.timeout_ms} or
 * fewer than {@code jgroups.members} answered. A read is this member's copy. A partial update's
 * conditional write is ReplicatedHashMap's replace, evaluated at every member in this member's send order
 * ({@link ReplicatedMap}). A scan is not implemented (a hash map has no key order). YCSB's threads share
 * the one member.
 *
 * <p>Properties: {@code jgroups.cluster} (default choir-ycsb), {@code jgroups.mcast_addr} (239.77.14.1),
 * {@code jgroups.mcast_port} (47588), {@code jgroups.bind_port} (47600), {@code jgroups.port_range} (16),
 * {@code jgroups.members} (3), {@code jgroups.timeout_ms} (10,000: a write's wait for the answers, and the
 * join's for the state and the members).
 */
public final class JGroupsYcsbClient extends RecordDb {
  private record Key(JGroupsNode.Settings settings, int members, long timeoutMs) {}

  @Override
  protected Store open(Properties p) throws DBException {
    Key k = new Key(JGroupsNode.Settings.of(p), Integer.parseInt(p.getProperty("jgroups.members", "3")),
        Long.parseLong(p.getProperty("jgroups.timeout_ms", "10000")));
    try {
      SharedClients.Lease<JGroupsNode> lease = SharedClients.acquire(k, 1, () -> {
        try {
          return JGroupsNode.join(k.settings(), k.timeoutMs(), k.members(), null);
        } catch (Exception e) {
          throw new IllegalStateException(e.getMessage(), e);
        }
      });
      return new JGroupsStore(lease, lease.client().map());
    } catch (RuntimeException e) {
      throw new DBException("cannot join JGroups cluster " + k.settings().cluster() + ": " + e.getMessage(), e);
    }
  }

  private record JGroupsStore(SharedClients.Lease<JGroupsNode> lease, ReplicatedMap map) implements Store {
    private static String name(byte[] key) {
      return new String(key, StandardCharsets.UTF_8);
    }

    @Override
    public Stored get(byte[] key) {
      byte[] v = map.get(name(key));
      return v == null ? null : new Stored(v, 0);
    }

    @Override
    public void put(byte[] key, byte[] value) {
      map.putAcked(name(key), value);
    }

    @Override
    public boolean replace(byte[] key, Stored read, byte[] value) {
      return map.replaceAcked(name(key), read.value(), value);
    }

    @Override
    public boolean delete(byte[] key) {
      return map.removeAcked(name(key));
    }

    @Override
    public List<byte[]> scan(byte[] start, byte[] end, int limit) {
      throw new UnsupportedOperationException("scan");
    }

    @Override
    public Status statusOf(RuntimeException e) {
      if (e instanceof UnsupportedOperationException) {
        return Status.NOT_IMPLEMENTED;
      }
      String m = String.valueOf(e.getMessage());
      if (m.startsWith("timeout")) {
        return new Status("TIMEOUT", m);
      }
      if (m.startsWith("unavailable")) {
        return Status.SERVICE_UNAVAILABLE;
      }
      return new Status("ERROR", e.getClass().getSimpleName() + ": " + m);
    }

    @Override
    public void close() {
      lease.release();
    }
  }
}
