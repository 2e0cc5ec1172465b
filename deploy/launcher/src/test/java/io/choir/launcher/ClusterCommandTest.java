package io.choir.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class ClusterCommandTest {
  @Test
  void replicasGetG1WithoutOptionsAndExactlyTheGivenOptionsOtherwise() {
    assertEquals(List.of("-XX:+UseG1GC"), ClusterCommand.Up.serverJvmOptions(null));
    assertEquals(List.of("-XX:+UseG1GC"), ClusterCommand.Up.serverJvmOptions("  "));
    assertEquals(List.of("-Xmx1g", "-XX:+UseParallelGC"),
        ClusterCommand.Up.serverJvmOptions(" -Xmx1g   -XX:+UseParallelGC "));
  }
}
