package io.choir.jepsen;

import com.github.dockerjava.api.model.Bind;
import com.github.dockerjava.api.model.Capability;
import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;
import com.github.dockerjava.api.model.Volume;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.containers.wait.strategy.AbstractWaitStrategy;
import org.testcontainers.images.builder.Transferable;
import org.testcontainers.utility.DockerImageName;

/**
 * ReplicaContainers builds the container of one replica of a {@link Cluster}: its configuration, key
 * and certificates copied in, its static IP and the other replicas in /etc/hosts, NET_ADMIN (for the
 * nftables faults), its data folder bound from the host, and its client port published on 127.0.0.1
 * only. Readiness is the cluster's (every replica answers and a primary is elected), not the container's.
 */
final class ReplicaContainers {
  private ReplicaContainers() {}

  /**
   * create is the (not yet started) container of the replica {@code spec} among {@code all};
   * {@code dataOnHost} null: the image's volume; {@code tls} null: plaintext clients.
   */
  static GenericContainer<?> create(ClusterSettings settings, String clusterId, Network network,
      NodeSpec spec, List<NodeSpec> all, Map<String, String> labels, Path dataOnHost, String clusterKey,
      ClusterTls tls) {
    return create(settings, clusterId, network, spec, all, all, labels, dataOnHost, clusterKey, tls);
  }

  /**
   * create is the container of the replica {@code spec} whose configuration lists {@code replicas} and
   * whose /etc/hosts names {@code hosts}: for a joiner, the current members plus itself, and every replica
   * ever started.
   */
  static GenericContainer<?> create(ClusterSettings settings, String clusterId, Network network,
      NodeSpec spec, List<NodeSpec> replicas, List<NodeSpec> hosts, Map<String, String> labels, Path dataOnHost,
      String clusterKey, ClusterTls tls) {
    String yaml = spec.serverYaml(clusterId, replicas, tls != null, settings.serverSettings());
    GenericContainer<?> c = new GenericContainer<>(DockerImageName.parse(settings.image()));
    if (tls != null) {
      // the container runs as root, the replica too: root owns the copies; keys are readable by it alone
      c.withCopyToContainer(Transferable.of(ClusterTls.read(tls.serverCertFile(spec.name())), 0644), NodeSpec.TLS_CERT_PATH)
          .withCopyToContainer(Transferable.of(ClusterTls.read(tls.serverKeyFile(spec.name())), 0600), NodeSpec.TLS_KEY_PATH)
          .withCopyToContainer(Transferable.of(ClusterTls.read(tls.caFile()), 0644), NodeSpec.TLS_CA_PATH)
          .withCopyToContainer(Transferable.of(ClusterTls.accessFile().getBytes(StandardCharsets.UTF_8), 0644),
              NodeSpec.ACCESS_PATH);
    }

    c.withNetwork(network)
        .withNetworkAliases(spec.name())
        .withLabels(labels)
        .withEnv("CHOIR_JAVA_OPTS", settings.javaOpts())
        .withCopyToContainer(Transferable.of(yaml), NodeSpec.CONFIG_PATH)
        .withCopyToContainer(Transferable.of(clusterKey.getBytes(StandardCharsets.UTF_8), 0600), NodeSpec.KEY_PATH)
        .waitingFor(new AbstractWaitStrategy() {
          @Override
          protected void waitUntilReady() {
            // readiness is the cluster's: every replica answers status and a primary is elected
          }
        })
        .withCreateContainerCmdModifier(cmd -> {
          List<String> extraHosts = new ArrayList<>();
          for (NodeSpec other : hosts) {
            if (other.id() != spec.id()) {
              extraHosts.add(other.name() + ":" + other.ip());
            }
          }
          ExposedPort client = ExposedPort.tcp(spec.clientPort());
          cmd.withName("choir-jepsen-" + settings.runId() + "-" + spec.name())
              .withHostName(spec.name())
              .withIpv4Address(spec.ip())
              .withExposedPorts(client);
          HostConfig hc = cmd.getHostConfig();
          if (dataOnHost != null) {
            // a bind of the host folder, set on the create command: Testcontainers' withFileSystemBind
            // would first probe with an alpine container whether binds work, and that image cannot be pulled
            hc.withBinds(new Bind(dataOnHost.toString(), new Volume(NodeSpec.DATA_DIR)));
          }
          hc.withCapAdd(Capability.NET_ADMIN)
              .withExtraHosts(extraHosts.toArray(String[]::new))
              .withPortBindings(new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", spec.clientPort()), client));
        });
    return c;
  }
}
