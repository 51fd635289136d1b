"""[notifiers], [email], [webhook]: who hears about recoveries, and how."""
from oslo_config import cfg

GROUP = cfg.OptGroup('notifiers', title='Notifications',
                     help='Which notifiers run.')

OPTS = [
    cfg.ListOpt('drivers', default=['log'],
                help='Notifier plugins (entry points in '
                     'freezer_dr.notifiers), e.g. email,webhook,log.'),
]

EMAIL_GROUP = cfg.OptGroup('email', title='Email notifier',
                           help='SMTP delivery to affected users and admins.')

EMAIL_OPTS = [
    cfg.HostAddressOpt('smtp_host', default='localhost',
                       help='SMTP server.'),
    cfg.PortOpt('smtp_port', default=25, help='SMTP port.'),
    cfg.StrOpt('security', default='none',
               choices=['none', 'starttls', 'ssl'],
               help='Transport security towards the SMTP server.'),
    cfg.StrOpt('username', help='SMTP user name (AUTH), if required.'),
    cfg.StrOpt('password', secret=True, help='SMTP password.'),
    cfg.StrOpt('from_address', default='freezer-dr@localhost',
               help='Sender address.'),
    cfg.ListOpt('admin_addresses', default=[],
                help='Administrators who receive the summaries and '
                     'alerts.'),
    cfg.BoolOpt('notify_users', default=True,
                help='Mail the users of affected projects.'),
    cfg.StrOpt('templates_dir',
               help='Directory with templates overriding the built-in '
                    'ones (same file names).'),
    cfg.FloatOpt('timeout', default=5.0, min=0.5,
                 help='Seconds one whole delivery may take: the SMTP '
                      'session from connecting to the end of the message '
                      '(TLS, AUTH and every command included). A mail '
                      'starts only while the leader lease outlives it and '
                      'is never committed after it, so it must stay below '
                      '[coordination] lease_ttl minus safety_margin.'),
    cfg.StrOpt('ca_file',
               help='CA bundle to verify the SMTP server certificate '
                    '(starttls / ssl); default: the system store.'),
    cfg.StrOpt('subject_prefix', default='[freezer-dr]',
               help='Text at the start of every subject line.'),
]

WEBHOOK_GROUP = cfg.OptGroup('webhook', title='Webhook notifier',
                             help='JSON POST of every event.')

WEBHOOK_OPTS = [
    cfg.URIOpt('url', help='URL the event is POSTed to.'),
    cfg.FloatOpt('timeout', default=5.0, min=0.1,
                 help='Seconds one whole POST may take, from connecting '
                      'to the last byte of the answer. A POST starts only '
                      'while the leader lease outlives it (below '
                      '[coordination] lease_ttl minus safety_margin).'),
    cfg.StrOpt('ca_file',
               help='CA bundle to verify an https URL; default: the '
                    'system store.'),
]
