package io.choir.ycsb;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jgroups.Address;
import org.jgroups.JChannel;
import org.jgroups.View;
import org.jgroups.blocks.ReplicatedHashMap;
import org.jgroups.protocols.BARRIER;

/**
 * JGroupsNode is one member of the JGroups peer of the YCSB comparison: a {@link JChannel} on the
 * loopback stack {@code jgroups-loopback.xml} joined to a cluster, holding a {@link ReplicatedMap}. The
 * member processes ({@link JGroupsMember}) and the YCSB process ({@link JGroupsYcsbClient}) are each
 * one; a member that joins receives the whole map from the coordinator (JGroups' STATE_TRANSFER).
 */
final class JGroupsNode implements AutoCloseable {
  /** Where a cluster is: its name, multicast group and port, and the unicast ports its members take. */
  record Settings(String cluster, String mcastAddr, int mcastPort, int bindPort, int portRange) {
    static final String CLUSTER = "choir-ycsb";
    static final String MCAST_ADDR = "239.77.14.1";
    static final int MCAST_PORT = 47588;
    static final int BIND_PORT = 47600;
    static final int PORT_RANGE = 16;

    Settings {
      if (!mcastAddr.matches("2(2[4-9]|3[0-9])(\\.\\d{1,3}){3}")) {
        throw new IllegalArgumentException("jgroups.mcast_addr: an IPv4 multicast group, not " + mcastAddr);
      }
    }

    /** The settings of YCSB properties jgroups.cluster, jgroups.mcast_addr, .mcast_port, .bind_port, .port_range. */
    static Settings of(Properties p) {
      return new Settings(p.getProperty("jgroups.cluster", CLUSTER),
          p.getProperty("jgroups.mcast_addr", MCAST_ADDR),
          Integer.parseInt(p.getProperty("jgroups.mcast_port", Integer.toString(MCAST_PORT))),
          Integer.parseInt(p.getProperty("jgroups.bind_port", Integer.toString(BIND_PORT))),
          Integer.parseInt(p.getProperty("jgroups.port_range", Integer.toString(PORT_RANGE))));
    }
  }

  /**
   * The map every member holds: a ConcurrentHashMap whose conditional replace and remove compare byte
   * arrays by their contents, so that ReplicatedHashMap's replace(key, old, new), evaluated at each member,
   * means "if the record is still these bytes" there (a byte array's equals is its identity, and a
   * member's copy of old is never the array it holds).
   */
  static final class ContentMap extends ConcurrentHashMap<String, byte[]> {
    private static final long serialVersionUID = 1L;

    @Override
    public boolean replace(String key, byte[] oldValue, byte[] newValue) {
      boolean[] replaced = {false};
      computeIfPresent(key, (k, current) -> {
        if (Arrays.equals(current, oldValue)) {
          replaced[0] = true;
          return newValue;
        }
        return current;
      });
      return replaced[0];
    }

    @Override
    public boolean remove(Object key, Object value) {
      if (!(key instanceof String k) || !(value instanceof byte[] v)) {
        return false;
      }
      boolean[] removed = {false};
      computeIfPresent(k, (kk, current) -> {
        if (Arrays.equals(current, v)) {
          removed[0] = true;
          return null;
        }
        return current;
      });
      return removed[0];
    }
  }

  static {
    // JGroups logs through SLF4J when its API is on the classpath, and no SLF4J provider is here: its
    // warnings (a discarded message, a suspected member) would be lost. java.util.logging prints them.
    if (System.getProperty("jgroups.use.jdk_logger") == null) {
      System.setProperty("jgroups.use.jdk_logger", "true");
    }
  }

  private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{choir\\.jgroups\\.([a-z_]+):[^}]*}");

  private final JChannel channel;
  private final ReplicatedMap map;

  private JGroupsNode(JChannel channel, ReplicatedMap map) {
    this.channel = channel;
    this.map = map;
  }

  /** The stack of settings: jgroups-loopback.xml with its choir.jgroups.* placeholders replaced. */
  static String stack(Settings s) throws IOException {
    String xml;
    try (InputStream in = JGroupsNode.class.getResourceAsStream("/jgroups-loopback.xml")) {
      if (in == null) {
        throw new IOException("jgroups-loopback.xml is not on the classpath");
      }
      xml = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    Map<String, String> values = Map.of("bind_port", Integer.toString(s.bindPort()),
        "port_range", Integer.toString(s.portRange()), "mcast_addr", s.mcastAddr(),
        "mcast_port", Integer.toString(s.mcastPort()));
    Matcher m = PLACEHOLDER.matcher(xml);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      String v = values.get(m.group(1));
      if (v == null) {
        throw new IOException("jgroups-loopback.xml: no setting for " + m.group());
      }
      m.appendReplacement(out, Matcher.quoteReplacement(v));
    }
    m.appendTail(out);
    return out.toString();
  }

  /**
   * Joins the cluster of settings and fetches the map's state from its coordinator; then waits until the
   * view has at least members members (0: does not wait), and from then on a write fails when fewer members
   * answer it.
   *
   * @param listener told of every view, from JGroups' thread (null: none)
   */
  static JGroupsNode join(Settings s, long timeoutMs, int members, java.util.function.Consumer<View> listener)
      throws Exception {
    JChannel channel = new JChannel(new ByteArrayInputStream(stack(s).getBytes(StandardCharsets.UTF_8)));
    ReplicatedMap map = new ReplicatedMap(channel, timeoutMs);
    map.addNotifier(new ReplicatedHashMap.Notification<String, byte[]>() {
      @Override
      public void entrySet(String key, byte[] value) {}

      @Override
      public void entryRemoved(String key) {}

      @Override
      public void contentsSet(Map<String, byte[]> m) {}

      @Override
      public void contentsCleared() {}

      @Override
      public void viewChange(View view, List<Address> joined, List<Address> left) {
        synchronized (map) {
          map.notifyAll();
        }
        if (listener != null) {
          listener.accept(view);
        }
      }
    });
    try {
      channel.connect(s.cluster());
      map.start(timeoutMs);
      long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
      // STATE_TRANSFER hands the state over (start returns) before it reopens the BARRIER it closed for
      // it; a multicast of this member sent in between never came back to this member, so its first write
      // waited for its own answer until the timeout. Writes start once the barrier is open again (JGroups
      // has no event for that: polled).
      BARRIER barrier = channel.getProtocolStack().findProtocol(BARRIER.class);
      while (barrier != null && barrier.isClosed()) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("the state transfer's barrier stayed closed for " + timeoutMs + " ms");
        }
        Thread.sleep(1);
      }
      synchronized (map) {
        while (channel.getView().size() < members) {
          long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
          if (left <= 0) {
            throw new IllegalStateException("cluster " + s.cluster() + " has " + channel.getView().size()
                + " members after " + timeoutMs + " ms, not " + members + ": " + channel.getView());
          }
          map.wait(Math.min(left, 200)); // woken by the view's notification; bounded in case it came early
        }
      }
      map.requireMembers(members);
    } catch (Exception | Error e) {
      channel.close();
      throw e;
    }
    return new JGroupsNode(channel, map);
  }

  ReplicatedMap map() {
    return map;
  }

  JChannel channel() {
    return channel;
  }

  /** Leaves the cluster (the others install a view without this member at once). */
  @Override
  public void close() {
    map.stop();
    channel.close();
  }
}
