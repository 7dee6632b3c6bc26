import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Exits 0 once the broker at args[0] answers an admin request (describeCluster with a
 * controller and at least one broker), 1 if it has not after args[1] seconds.
 * Run with the broker's own classpath: java -cp 'lib/*' BrokerReady.java host:port 60
 */
public class BrokerReady {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                try {
                    var cluster = admin.describeCluster();
                    int brokers = cluster.nodes().get(5, TimeUnit.SECONDS).size();
                    if (brokers > 0 && cluster.controller().get(5, TimeUnit.SECONDS) != null) {
                        System.exit(0);
                    }
                } catch (Exception notYet) {
                    // The broker is still starting; ask again.
                }
                Thread.sleep(500);
            }
        }
        System.err.println("broker at " + bootstrap + " did not answer an admin request in time");
        System.exit(1);
    }
}
