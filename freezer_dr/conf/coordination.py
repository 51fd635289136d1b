"""[coordination]: the etcd cluster the replicas share, and lease timing."""
from oslo_config import cfg

GROUP = cfg.OptGroup('coordination', title='Leader election and checkpoints',
                     help='Where the replicas meet (etcd) and how the leader '
                          'lease is timed.')

OPTS = [
    cfg.StrOpt('backend_url', default='etcd3+http://127.0.0.1:2379',
               help='etcd cluster as a tooz URL: etcd3+http://HOST:PORT or '
                    'etcd3+https://HOST:PORT; list every member, comma '
                    'separated (etcd3+https://h1:2379,h2:2379,h3:2379), '
                    'and the client moves to the next one when a member '
                    'is unreachable or cannot serve. TLS: '
                    '?ca_cert=CA.pem&cert_key=KEY.pem&cert_cert=CERT.pem '
                    '(ca_cert wins over REQUESTS_CA_BUNDLE).'),
    cfg.StrOpt('cluster', default='default',
               help='Name of this freezer-dr cluster; keys live under '
                    '/freezer-dr/<cluster>/.'),
    cfg.HostnameOpt('member_id', sample_default='<host name>',
                    help='Identity of this replica in the cluster. Defaults '
                         'to the host name.'),
    cfg.FloatOpt('lease_ttl', default=10.0, min=2.0,
                 help='Leader lease time-to-live in seconds. A dead leader '
                      'is replaced at most this long after its last '
                      'keepalive.'),
    cfg.FloatOpt('keepalive_interval', min=0.1,
                 help='Seconds between lease keepalives. Defaults to '
                      'lease_ttl / 3.'),
    cfg.FloatOpt('http_timeout', default=1.5, min=0.1,
                 help='Timeout in seconds of every etcd request. Must be '
                      'well under lease_ttl.'),
    cfg.FloatOpt('poll_interval', default=1.0, min=0.05,
                 help='Seconds between a standby\'s looks at the leader '
                      'key (at most 1 s for a prompt takeover).'),
    cfg.FloatOpt('safety_margin', default=0.5, min=0.0,
                 help='Seconds of lease kept in reserve: the leader acts '
                      'only while now + margin + expected step time is '
                      'before its lease deadline.'),
    cfg.FloatOpt('membership_timeout', default=10.0, min=1.0,
                 help='Seconds after which a silent replica drops out of '
                      'the member list.'),
]
