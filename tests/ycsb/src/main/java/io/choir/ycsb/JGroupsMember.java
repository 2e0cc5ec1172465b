package io.choir.ycsb;

import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * JGroupsMember is a member process of the JGroups peer of the YCSB comparison: it joins the cluster on
 * the loopback stack, holds the cluster's ReplicatedHashMap, prints {@code ready members=N} once the view
 * has {@code --expect} members (then every later view on standard error), and leaves the cluster and exits
 * on SIGTERM (or SIGINT).
 *
 * <pre>java -cp ... io.choir.ycsb.JGroupsMember --cluster choir-ycsb --mcast-port 47588 --expect 2</pre>
 */
@Command(name = "jgroups-member", mixinStandardHelpOptions = true,
    description = "A member of a JGroups ReplicatedHashMap cluster on loopback, for the YCSB comparison.")
public final class JGroupsMember implements Callable<Integer> {
  @Option(names = "--cluster", description = "cluster name (default ${DEFAULT-VALUE})")
  String cluster = JGroupsNode.Settings.CLUSTER;

  @Option(names = "--mcast-addr", description = "multicast group, sent on loopback with TTL 0 (default ${DEFAULT-VALUE})")
  String mcastAddr = JGroupsNode.Settings.MCAST_ADDR;

  @Option(names = "--mcast-port", description = "multicast port (default ${DEFAULT-VALUE})")
  int mcastPort = JGroupsNode.Settings.MCAST_PORT;

  @Option(names = "--bind-port", description = "first unicast port of the members on 127.0.0.1 (default ${DEFAULT-VALUE})")
  int bindPort = JGroupsNode.Settings.BIND_PORT;

  @Option(names = "--port-range", description = "unicast ports the members try from --bind-port (default ${DEFAULT-VALUE})")
  int portRange = JGroupsNode.Settings.PORT_RANGE;

  @Option(names = "--expect", description = "members in the view before this one prints ready (default ${DEFAULT-VALUE})")
  int expect = 1;

  @Option(names = "--timeout-ms", description = "wait for the state and for --expect members (default ${DEFAULT-VALUE})")
  long timeoutMs = 60_000;

  public static void main(String[] args) {
    System.exit(new CommandLine(new JGroupsMember()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    JGroupsNode.Settings s = new JGroupsNode.Settings(cluster, mcastAddr, mcastPort, bindPort, portRange);
    AtomicBoolean ready = new AtomicBoolean();
    JGroupsNode node = JGroupsNode.join(s, timeoutMs, expect, view -> {
      if (ready.get()) {
        System.err.println("view " + view);
      }
    });
    CountDownLatch stopped = new CountDownLatch(1);
    Thread leave = new Thread(() -> {
      node.close();
      stopped.countDown();
    }, "jgroups-member-leave");
    Runtime.getRuntime().addShutdownHook(leave);
    ready.set(true);
    System.out.println("ready members=" + node.channel().getView().size() + " address=" + node.channel().getAddress()
        + " records=" + node.map().size());
    System.out.flush();
    stopped.await(); // until SIGTERM runs the hook
    return 0;
  }
}
