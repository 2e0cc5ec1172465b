package io.choir.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.RuntimeVersion;
import io.choir.client.ChoirClient;
import io.netty.util.Version;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The BOM (client/bom/pom.xml) has no parent, so its versions are written out: they must be the ones
 * this build compiles and tests the client with (the Netty and protobuf-java on this test's classpath,
 * which the root pom.xml picks) and the project's own version.
 */
class BomVersionsTest {
  private static String property(String pom, String name) {
    Matcher m = Pattern.compile("<" + Pattern.quote(name) + ">([^<]+)</" + Pattern.quote(name) + ">").matcher(pom);
    if (!m.find()) {
      throw new AssertionError("no <" + name + "> in the BOM");
    }
    return m.group(1).trim();
  }

  @Test
  void bomVersionsAreTheBuildsVersions() throws Exception {
    String bom = Files.readString(Path.of("..", "bom", "pom.xml"));
    String netty = Version.identify(ChoirClient.class.getClassLoader()).get("netty-transport").artifactVersion();
    assertEquals(netty, property(bom, "netty.version"), "netty.version of client/bom/pom.xml");
    String protobuf = RuntimeVersion.MAJOR + "." + RuntimeVersion.MINOR + "." + RuntimeVersion.PATCH;
    assertEquals(protobuf, property(bom, "protobuf.version"), "protobuf.version of client/bom/pom.xml");
    String project = System.getProperty("choir.project.version");
    assertEquals(project, property(bom.substring(bom.indexOf("<artifactId>choir-bom</artifactId>")), "version"),
        "the BOM's own version");
  }
}
