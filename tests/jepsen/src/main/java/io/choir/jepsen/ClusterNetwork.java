package io.choir.jepsen;

import com.github.dockerjava.api.model.Network.Ipam;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.net.SocketException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.testcontainers.containers.Network;

/**
 * ClusterNetwork is where a {@link Cluster}'s replicas live: the run's own Docker bridge network on a
 * /24 that no other network or address of this host uses, and each replica's address (a static IP on
 * that subnet, kept across a kill and restart, and a client port on the host's 127.0.0.1).
 */
final class ClusterNetwork implements AutoCloseable {
  // logs under Cluster's name, as before the network had a class of its own
  private static final Logger log = LoggerFactory.getLogger(Cluster.class);

  private final Network network;
  private final String subnet;

  private ClusterNetwork(Network network, String subnet) {
    this.network = network;
    this.subnet = subnet;
  }

  /** create creates the run's network, labelled {@code labels}, on a free subnet (up to 8 tries). */
  static ClusterNetwork create(String runId, Map<String, String> labels) {
    Network network = null;
    String subnet = null;
    RuntimeException last = null;
    Random random = new Random();
    for (int attempt = 0; attempt < 8 && network == null; attempt++) {
      String candidate = pickSubnet(random);
      String gateway = prefix(candidate) + ".1";
      Network n = Network.builder()
          .createNetworkCmdModifier(cmd -> {
            Map<String, String> all = new HashMap<>(cmd.getLabels() == null ? Map.of() : cmd.getLabels());
            all.putAll(labels);
            cmd.withName("choir-jepsen-" + runId)
                .withLabels(all)
                .withIpam(new Ipam().withConfig(
                    new Ipam.Config().withSubnet(candidate).withGateway(gateway)));
          })
          .build();
      try {
        n.getId(); // creates it
        network = n;
        subnet = candidate;
      } catch (RuntimeException e) {
        last = e;
        log.debug("network on {} refused: {}", candidate, e.toString());
      }
    }
    if (network == null) {
      throw new IllegalStateException("could not create a network for the run", last);
    }
    return new ClusterNetwork(network, subnet);
  }

  /** network is the Docker network the containers join. */
  Network network() {
    return network;
  }

  /** subnet is the network's IPv4 subnet. */
  String subnet() {
    return subnet;
  }

  /** specs are the addresses of {@code nodes} replicas n1..: IPs .11, .12, ... and free client ports. */
  List<NodeSpec> specs(int nodes) {
    List<NodeSpec> specs = new ArrayList<>();
    List<Integer> ports = freePorts(nodes);
    for (int i = 1; i <= nodes; i++) {
      specs.add(new NodeSpec(i, "n" + i, prefix(subnet) + "." + (10 + i), ports.get(i - 1)));
    }
    return specs;
  }

  /**
   * joinerSpec is the address of a replica started later to join the cluster: id {@code id}, IP
   * {@code .(10 + id)} like the others (so the next unused id gives the next unused IP) and a free client
   * port none of {@code portsInUse}.
   */
  NodeSpec joinerSpec(int id, Collection<Integer> portsInUse) {
    if (id < 1 || 10 + id > 254) {
      throw new IllegalArgumentException("no address for replica " + id + " on " + subnet);
    }
    for (int tries = 0; tries < 100; tries++) {
      int port = freePorts(1).get(0);
      if (!portsInUse.contains(port)) {
        return new NodeSpec(id, "n" + id, prefix(subnet) + "." + (10 + id), port, true);
      }
    }
    throw new IllegalStateException("no free client port for replica " + id);
  }

  @Override
  public void close() {
    network.close();
  }

  static String prefix(String subnet24) {
    String base = subnet24.substring(0, subnet24.indexOf('/'));
    return base.substring(0, base.lastIndexOf('.'));
  }

  /**
   * pickSubnet picks a /24 in 10.199.0.0/16 that overlaps neither a Docker network nor an address of
   * this host (its loopback and LAN included).
   */
  static String pickSubnet(Random random) {
    List<String> used = new ArrayList<>(Docker.subnetsInUse());
    try {
      for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        nif.getInterfaceAddresses().forEach(a -> {
          if (a.getAddress() instanceof Inet4Address) {
            used.add(a.getAddress().getHostAddress() + "/" + a.getNetworkPrefixLength());
          }
        });
      }
    } catch (SocketException e) {
      log.debug("listing interfaces: {}", e.toString());
    }
    for (int i = 0; i < 256; i++) {
      String candidate = "10.199." + random.nextInt(256) + ".0/24";
      if (used.stream().noneMatch(u -> Subnets.overlap(u, candidate))) {
        return candidate;
      }
    }
    throw new IllegalStateException("no free /24 in 10.199.0.0/16 (in use: " + used + ")");
  }

  /**
   * freePorts finds {@code n} distinct TCP ports that are free on 127.0.0.1 now, below Linux's ephemeral
   * range (32768-60999) so that no outgoing connection can take one while its replica restarts.
   */
  static List<Integer> freePorts(int n) {
    Random random = new Random();
    List<Integer> ports = new ArrayList<>();
    for (int tries = 0; ports.size() < n && tries < 1000; tries++) {
      int p = 20000 + random.nextInt(10000);
      if (ports.contains(p)) {
        continue;
      }
      try (ServerSocket s = new ServerSocket(p, 1, InetAddress.getLoopbackAddress())) {
        ports.add(s.getLocalPort());
      } catch (IOException e) {
        // in use: try another
      }
    }
    if (ports.size() < n) {
      throw new IllegalStateException("cannot find " + n + " free ports in 20000-29999");
    }
    return ports;
  }
}
