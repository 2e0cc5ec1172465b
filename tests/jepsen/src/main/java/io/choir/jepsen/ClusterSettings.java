package io.choir.jepsen;

import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ClusterSettings are the settings of a {@link Cluster}: how many replicas of which image, the run's id,
 * the extra server settings, the replicas' JVM options and start timeout, their data disks and TLS.
 *
 * @param dataDiskMegabytes size of each replica's own data file system ({@link DataDisks}); 0 keeps the
 *     data in the image's volume (then disk-full cannot run)
 * @param tls true (the default): TLS on the client port, client certificates required, an access file
 *     ({@link ClusterTls}); false: plaintext clients
 */
public record ClusterSettings(
    int nodes,
    String image,
    String runId,
    Map<String, Object> serverSettings,
    String javaOpts,
    Duration startTimeout,
    long dataDiskMegabytes,
    boolean tls) {
  /**
   * DATA_DISK_MB_DEFAULT: 256 MiB holds well over a million register ops (about 200 bytes of WAL
   * each), and the image is sparse, so it costs only what is written. System property
   * {@code choir.jepsen.dataDiskMb} overrides it; 0 turns the data disks off.
   */
  public static final long DATA_DISK_MB_DEFAULT = 256;

  /** ClusterSettings checks the node count. */
  public ClusterSettings {
    if (nodes != 1 && nodes != 3 && nodes != 5 && nodes != 7) {
      throw new IllegalArgumentException("nodes must be 1, 3, 5 or 7, got " + nodes);
    }
    if (dataDiskMegabytes != 0 && dataDiskMegabytes < 64) {
      throw new IllegalArgumentException("a data disk needs at least 64 MiB (RocksDB's files), got " + dataDiskMegabytes);
    }
    serverSettings = Collections.unmodifiableMap(new LinkedHashMap<>(serverSettings));
  }

  /**
   * ClusterSettings with the default data disks ({@link #DATA_DISK_MB_DEFAULT} or the system property) and TLS
   * on.
   */
  public ClusterSettings(int nodes, String image, String runId, Map<String, Object> serverSettings, String javaOpts,
      Duration startTimeout) {
    this(nodes, image, runId, serverSettings, javaOpts, startTimeout,
        Long.getLong("choir.jepsen.dataDiskMb", DATA_DISK_MB_DEFAULT), true);
  }

  /** defaults: {@code nodes} replicas of choir:latest with the server's defaults. */
  public static ClusterSettings defaults(int nodes, String runId) {
    return new ClusterSettings(nodes, System.getProperty("choir.jepsen.image", "choir:latest"), runId, Map.of(),
        "-Xms64m -Xmx256m", Duration.ofSeconds(90));
  }

  /** withServerSettings replaces the extra server settings. */
  public ClusterSettings withServerSettings(Map<String, Object> settings) {
    return new ClusterSettings(nodes, image, runId, settings, javaOpts, startTimeout, dataDiskMegabytes, tls);
  }

  /** withDataDiskMegabytes replaces the data disks' size (0: none). */
  public ClusterSettings withDataDiskMegabytes(long megabytes) {
    return new ClusterSettings(nodes, image, runId, serverSettings, javaOpts, startTimeout, megabytes, tls);
  }

  /** withTls turns TLS on the client port on or off. */
  public ClusterSettings withTls(boolean on) {
    return new ClusterSettings(nodes, image, runId, serverSettings, javaOpts, startTimeout, dataDiskMegabytes, on);
  }
}
