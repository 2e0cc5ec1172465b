import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Opcodes;

/**
 * RetargetClasses copies a jar with each class file raised to class-file version 52 (Java 8) and its
 * stack map frames computed anew, so that the JVM can put those classes into a class-data-sharing
 * archive: JDK 17 leaves any class older than version 50 out of one (picocli's jar is built for Java 5,
 * version 49, and its 174 classes were loaded, parsed and verified from the jar on every CLI call). A
 * run of the deploy build (deploy/pom.xml, before the CLI's archive is trained), on the source launcher:
 *
 * <pre>java -cp asm.jar deploy/cds/RetargetClasses.java IN.jar OUT.jar</pre>
 *
 * <p>Only the version and the frames change: every instruction, member and attribute is kept, and the
 * JVM verifies the frames when it loads a class, so a wrong one fails at once (VerifyError), never
 * silently. module-info classes and other entries are copied as they are. Frames are computed with the
 * input jar itself on the class path (ASM's common-super-class lookup loads the classes it compares).
 */
public final class RetargetClasses {
  public static void main(String[] args) throws IOException {
    if (args.length != 2) {
      System.err.println("usage: RetargetClasses IN.jar OUT.jar");
      System.exit(2);
    }
    Path in = Path.of(args[0]);
    Path out = Path.of(args[1]);
    Path tmp = Files.createTempFile(out.toAbsolutePath().getParent(), "retarget", ".jar");
    int raised = 0;
    try (URLClassLoader loader = new URLClassLoader(new URL[] {in.toUri().toURL()},
            RetargetClasses.class.getClassLoader());
        JarFile jar = new JarFile(in.toFile());
        OutputStream file = new FileOutputStream(tmp.toFile());
        JarOutputStream target = new JarOutputStream(file)) {
      for (JarEntry e : java.util.Collections.list(jar.entries())) {
        byte[] bytes = jar.getInputStream(e).readAllBytes();
        String name = e.getName();
        if (name.endsWith(".class") && !name.endsWith("module-info.class")) {
          ClassReader reader = new ClassReader(bytes);
          if (reader.readShort(6) < Opcodes.V1_8) {
            bytes = raise(reader, loader);
            raised++;
          }
        }
        JarEntry copy = new JarEntry(name);
        copy.setTime(e.getTime());
        target.putNextEntry(copy);
        target.write(bytes);
        target.closeEntry();
      }
    }
    // A temporary file is made owner-only (0600): the jar must be readable by whoever runs the
    // distribution (the image runs the server as an unprivileged user).
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
    Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    System.out.println("RetargetClasses: " + raised + " classes of " + in.getFileName() + " raised to version 52");
  }

  private static byte[] raise(ClassReader reader, ClassLoader loader) {
    // No reader passed to the writer: every method is rewritten, so every frame is computed.
    ClassWriter writer = new ClassWriter(ClassWriter.COMPUTE_FRAMES) {
      @Override
      protected ClassLoader getClassLoader() {
        return loader;
      }
    };
    reader.accept(new ClassVisitor(Opcodes.ASM9, writer) {
      @Override
      public void visit(int version, int access, String name, String signature, String superName,
          String[] interfaces) {
        super.visit(Opcodes.V1_8, access, name, signature, superName, interfaces);
      }
    }, ClassReader.SKIP_FRAMES);
    return writer.toByteArray();
  }
}
