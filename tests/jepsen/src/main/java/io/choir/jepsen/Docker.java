package io.choir.jepsen;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.async.ResultCallback;
import com.github.dockerjava.api.command.ExecCreateCmdResponse;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.exception.NotModifiedException;
import com.github.dockerjava.api.model.Container;
import com.github.dockerjava.api.model.Frame;
import com.github.dockerjava.api.model.Network;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.testcontainers.DockerClientFactory;

/**
 * Docker is the harness's thin layer over the Docker API (the client Testcontainers already configured):
 * exec with a timeout, kill/start/pause, logs, and the cleanup by label that replaces Ryuk (disabled on
 * these machines).
 *
 * <p>Every container and network of a run carries {@link #LABEL}=true, {@link #RUN_LABEL}=the run id and
 * {@link #PID_LABEL}=the pid of the JVM that owns it. A run removes its own things at the end, and at the
 * start removes what runs whose JVM no longer exists left behind (a crashed or killed run), without
 * touching a run that is still going in another JVM.
 */
public final class Docker {
  private static final Logger log = LoggerFactory.getLogger(Docker.class);

  /** LABEL marks everything the harness creates. */
  public static final String LABEL = "choir.jepsen";
  /** RUN_LABEL carries the run id. */
  public static final String RUN_LABEL = "choir.jepsen.run";
  /** PID_LABEL carries the pid of the JVM that created the object. */
  public static final String PID_LABEL = "choir.jepsen.pid";

  private Docker() {}

  /**
   * checkEnvironment refuses to go on without the two Testcontainers settings these machines need (see
   * ../shared/ENVIRONMENT.md): without TESTCONTAINERS_RYUK_DISABLED Testcontainers tries to pull Ryuk's
   * image from Docker Hub, and without TESTCONTAINERS_HOST_OVERRIDE inside a container (/.dockerenv) it
   * starts an alpine container to find the gateway. Both are read from the environment only, so they
   * cannot be set from here. Set TESTCONTAINERS_RYUK_DISABLED=false explicitly to use Ryuk.
   */
  public static void checkEnvironment() {
    List<String> missing = new ArrayList<>();
    if (System.getenv("TESTCONTAINERS_RYUK_DISABLED") == null) {
      missing.add("TESTCONTAINERS_RYUK_DISABLED=true");
    }
    if (System.getenv("TESTCONTAINERS_HOST_OVERRIDE") == null && Files.exists(Path.of("/.dockerenv"))) {
      missing.add("TESTCONTAINERS_HOST_OVERRIDE=localhost");
    }
    if (!missing.isEmpty()) {
      throw new IllegalStateException("set " + String.join(" and ", missing) + " in the environment (tests/jepsen/run.sh"
          + " and the module's surefire configuration do): without them Testcontainers pulls images from a registry");
    }
  }

  /** client is the Docker client Testcontainers configured from the environment. */
  public static DockerClient client() {
    return DockerClientFactory.instance().client();
  }

  /** labels are the labels of everything run {@code runId} creates. */
  public static Map<String, String> labels(String runId) {
    return Map.of(LABEL, "true", RUN_LABEL, runId, PID_LABEL, Long.toString(ProcessHandle.current().pid()));
  }

  /** ExecResult is the exit code and output of a command run in a container. */
  public record ExecResult(long exitCode, String stdout, String stderr) {
    /** ok is true for exit code 0. */
    public boolean ok() {
      return exitCode == 0;
    }
  }

  /**
   * exec runs {@code cmd} in the running container {@code id} and waits for it, at most {@code timeout}.
   *
   * @throws IllegalStateException when the command does not finish in time or the exec cannot start
   */
  public static ExecResult exec(String id, Duration timeout, String... cmd) {
    DockerClient docker = client();
    ExecCreateCmdResponse created = docker.execCreateCmd(id).withCmd(cmd).withAttachStdout(true)
        .withAttachStderr(true).exec();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try (ResultCallback.Adapter<Frame> cb = docker.execStartCmd(created.getId()).exec(new ResultCallback.Adapter<>() {
      @Override
      public void onNext(Frame frame) {
        if (frame.getPayload() == null) {
          return;
        }
        switch (frame.getStreamType()) {
          case STDERR -> err.writeBytes(frame.getPayload());
          default -> out.writeBytes(frame.getPayload());
        }
      }
    })) {
      if (!cb.awaitCompletion(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IllegalStateException("exec " + String.join(" ", cmd) + " in " + shortId(id)
            + " did not finish within " + timeout.toMillis() + " ms");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while running " + String.join(" ", cmd), e);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    Long code = docker.inspectExecCmd(created.getId()).exec().getExitCodeLong();
    return new ExecResult(code == null ? -1 : code, out.toString(StandardCharsets.UTF_8),
        err.toString(StandardCharsets.UTF_8));
  }

  /** kill sends {@code signal} (e.g. KILL) to the container's main process. */
  public static void kill(String id, String signal) {
    client().killContainerCmd(id).withSignal(signal).exec();
  }

  /**
   * stop stops a container like {@code docker stop}: its STOPSIGNAL (SIGTERM for the Choir image), then
   * SIGKILL after {@code grace}; returns when it has stopped. Stopping a stopped container is a no-op.
   */
  public static void stop(String id, Duration grace) {
    try {
      client().stopContainerCmd(id).withTimeout((int) Math.max(1, grace.toSeconds())).exec();
    } catch (NotModifiedException e) {
      // already stopped
    }
  }

  /** start starts a stopped container again (same file system, volumes, IP and port bindings). */
  public static void start(String id) {
    client().startContainerCmd(id).exec();
  }

  /** pause freezes every process of the container (cgroup freezer). */
  public static void pause(String id) {
    client().pauseContainerCmd(id).exec();
  }

  /** unpause thaws a paused container. */
  public static void unpause(String id) {
    client().unpauseContainerCmd(id).exec();
  }

  /** state is the container's state: running, paused, exited, ... */
  public static InspectContainerResponse.ContainerState state(String id) {
    return client().inspectContainerCmd(id).exec().getState();
  }

  /** saveLogs writes the container's stdout and stderr (all incarnations, with timestamps) to {@code file}. */
  public static void saveLogs(String id, Path file) throws IOException {
    Files.createDirectories(file.getParent());
    try (OutputStream out = Files.newOutputStream(file);
        ResultCallback.Adapter<Frame> cb = client().logContainerCmd(id).withStdOut(true).withStdErr(true)
            .withTimestamps(true).withFollowStream(false).exec(new ResultCallback.Adapter<>() {
              @Override
              public void onNext(Frame frame) {
                try {
                  if (frame.getPayload() != null) {
                    out.write(frame.getPayload());
                  }
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              }
            })) {
      if (!cb.awaitCompletion(30, TimeUnit.SECONDS)) {
        log.warn("logs of {} not complete after 30 s", shortId(id));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** removeRun removes the containers (with their volumes) and networks of run {@code runId}. */
  public static int removeRun(String runId) {
    return remove(RUN_LABEL + "=" + runId, false);
  }

  /**
   * removeStale removes what harness runs left behind whose JVM is gone (a crash, a kill -9, a reboot):
   * containers, networks, then the data disks those containers used ({@link DataDisks#removeStale});
   * {@code all} removes every harness container, network and disk, live runs included.
   */
  public static int removeStale(boolean all) {
    int removed = remove(LABEL + "=true", !all);
    return removed + DataDisks.removeStale(all);
  }

  private static int remove(String labelFilter, boolean onlyDeadOwners) {
    DockerClient docker = client();
    int removed = 0;
    List<Container> containers = docker.listContainersCmd().withShowAll(true)
        .withLabelFilter(List.of(labelFilter)).exec();
    for (Container c : containers) {
      if (onlyDeadOwners && ownerAlive(c.getLabels())) {
        continue;
      }
      try {
        if ("paused".equalsIgnoreCase(c.getState())) {
          docker.unpauseContainerCmd(c.getId()).exec();
        }
      } catch (RuntimeException e) {
        log.debug("unpause {}: {}", shortId(c.getId()), e.toString());
      }
      try {
        docker.removeContainerCmd(c.getId()).withForce(true).withRemoveVolumes(true).exec();
        removed++;
      } catch (RuntimeException e) {
        log.warn("could not remove container {}: {}", shortId(c.getId()), e.toString());
      }
    }
    List<Network> networks = docker.listNetworksCmd().withFilter("label", List.of(labelFilter)).exec();
    for (Network n : networks) {
      if (onlyDeadOwners && ownerAlive(n.getLabels())) {
        continue;
      }
      try {
        docker.removeNetworkCmd(n.getId()).exec();
        removed++;
      } catch (RuntimeException e) {
        log.warn("could not remove network {}: {}", n.getName(), e.toString());
      }
    }
    if (removed > 0) {
      log.info("removed {} leftover container(s)/network(s) labelled {}", removed, labelFilter);
    }
    return removed;
  }

  private static boolean ownerAlive(Map<String, String> labels) {
    String pid = labels == null ? null : labels.get(PID_LABEL);
    if (pid == null) {
      return false;
    }
    try {
      long p = Long.parseLong(pid);
      return p == ProcessHandle.current().pid() || ProcessHandle.of(p).map(ProcessHandle::isAlive).orElse(false);
    } catch (NumberFormatException e) {
      return false;
    }
  }

  /** subnetsInUse lists the IPv4 subnets of every Docker network, so a run can pick a free one. */
  public static List<String> subnetsInUse() {
    List<String> out = new ArrayList<>();
    for (Network n : client().listNetworksCmd().exec()) {
      if (n.getIpam() != null && n.getIpam().getConfig() != null) {
        for (Network.Ipam.Config c : n.getIpam().getConfig()) {
          if (c.getSubnet() != null) {
            out.add(c.getSubnet());
          }
        }
      }
    }
    return out;
  }

  static String shortId(String id) {
    return id == null ? "?" : id.substring(0, Math.min(12, id.length()));
  }
}
