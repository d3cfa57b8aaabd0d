# Bad directive values are refused by `nginx -t` with a message naming the
# directive; a good configuration passes.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use ChatTest;

my $t = ChatTest->new(workers => 1);
my $dir = $t->dir;
my $nginx = $ChatTest::NGINX;

$t->write_file('short.secret', "too short\n");

# a configuration with one line replaced
sub conf_with {
    my (%o) = @_;
    my %d = (
        secret => "chat_jwt_secret_file $dir/secret;",
        pg => 'chat_postgres "host=127.0.0.1 port=1 dbname=chat";',
        redis => 'chat_redis 127.0.0.1:6379;',
        extra => '',
        loc => 'chat_websocket;',
    );
    %d = (%d, %o);
    return <<EOF;
    $d{secret}
    $d{pg}
    $d{redis}
    $d{extra}
    server {
        listen 127.0.0.1:%%PORT%%;
        location = /chat { $d{loc} }
    }
EOF
}

sub nginx_t {
    my ($http) = @_;
    $t->conf($http);
    local $ENV{LD_PRELOAD} = $ENV{CHAT_TEST_PRELOAD}
        if $ENV{CHAT_TEST_PRELOAD};
    my $out = `$nginx -t -p $dir/ -c $dir/nginx.conf -e $dir/t.log 2>&1`;
    return ($? >> 8, $out);
}

my ($rc, $out) = nginx_t(conf_with());
is $rc, 0, 'a good configuration passes nginx -t' or diag $out;

# Redis Cluster seeds: checked, never connected to at configuration time
($rc, $out) = nginx_t(conf_with(redis => 'chat_redis 127.0.0.1:7000 '
    . '127.0.0.1:7001 [::1]:7002 cluster=on prefix=c:;'));
is $rc, 0, 'cluster seeds pass nginx -t' or diag $out;

# the rate limits at their bounds, and off
($rc, $out) = nginx_t(conf_with(extra => <<'EOF'));
chat_command_rate 1000000r/s burst=10000;
chat_user_rate createChat 1r/m burst=1;
chat_user_rate modifyChatParticipants off;
chat_user_rate createAttachment 60000000r/m;
chat_max_inflight 100000;
chat_send_queue_time 1ms;
EOF
is $rc, 0, 'rate limits at their bounds pass nginx -t' or diag $out;
($rc, $out) = nginx_t(conf_with(extra => "chat_command_rate off;\n"
    . "chat_max_inflight 1;\nchat_send_queue_time off;"));
is $rc, 0, 'chat_command_rate off passes nginx -t' or diag $out;

my @bad = (
    [ { extra => 'chat_ping_interval abc;' }, qr/chat_ping_interval/ ],
    [ { extra => 'chat_max_devices 0;' }, qr/chat_max_devices/ ],
    [ { extra => 'chat_max_participants 1;' }, qr/chat_max_participants/ ],
    [ { extra => 'chat_max_frame_size 100;' }, qr/chat_max_frame_size/ ],
    [ { extra => 'chat_max_frame_size 2g;' }, qr/chat_max_frame_size/ ],
    [ { extra => 'chat_max_fragments 0;' }, qr/chat_max_fragments/ ],
    [ { extra => 'chat_max_fragments 1048577;' }, qr/chat_max_fragments/ ],
    [ { extra => 'chat_order_hold_limit 2g;' }, qr/chat_order_hold_limit/ ],
    [ { extra => 'chat_output_limit 1k;' }, qr/chat_output_limit/ ],
    [ { extra => 'chat_max_message_size 200k;' }, qr/chat_max_message_size/ ],
    [ { extra => 'chat_retention 0;' }, qr/chat_retention/ ],
    [ { extra => 'chat_db_timeout 0;' }, qr/chat_/ ],
    [ { extra => 'chat_send_batch_size 0;' }, qr/chat_send_batch_size/ ],
    [ { extra => 'chat_send_batch_size 5001;' }, qr/chat_send_batch_size/ ],
    [ { extra => 'chat_send_batches 0;' }, qr/chat_send_batches/ ],
    [ { extra => 'chat_send_batches 65;' }, qr/chat_send_batches/ ],
    [ { extra => 'chat_command_rate 0r/s;' }, qr/chat_command_rate/ ],
    [ { extra => 'chat_command_rate 50;' }, qr/chat_command_rate/ ],
    [ { extra => 'chat_command_rate 50r/h;' }, qr/chat_command_rate/ ],
    [ { extra => 'chat_command_rate 1000001r/s;' }, qr/chat_command_rate/ ],
    [ { extra => 'chat_command_rate 50r/s burst=0;' },
      qr/chat_command_rate/ ],
    [ { extra => 'chat_command_rate 50r/s burst=10001;' },
      qr/chat_command_rate/ ],
    [ { extra => 'chat_command_rate 50r/s bust=10;' }, qr/chat_command_rate/ ],
    [ { extra => 'chat_command_rate off burst=10;' }, qr/chat_command_rate/ ],
    [ { extra => "chat_command_rate 5r/s;\nchat_command_rate 6r/s;" },
      qr/chat_command_rate/ ],
    [ { extra => 'chat_user_rate sendMessage 5r/m;' }, qr/chat_user_rate/ ],
    [ { extra => 'chat_user_rate createChat;' }, qr/chat_user_rate/ ],
    [ { extra => 'chat_user_rate createChat 0r/m;' }, qr/chat_user_rate/ ],
    [ { extra => 'chat_user_rate createAttachment 5r/m burst=10001;' },
      qr/chat_user_rate/ ],
    [ { extra => "chat_user_rate createChat 5r/m;\n"
                 . "chat_user_rate createChat 6r/m;" }, qr/chat_user_rate/ ],
    [ { extra => 'chat_send_queue_time 0;' }, qr/chat_send_queue_time/ ],
    [ { extra => 'chat_send_queue_time abc;' }, qr/chat_send_queue_time/ ],
    [ { extra => 'chat_send_queue_time 2s;' },
      qr/"chat_send_queue_time" must be below "chat_db_timeout"/ ],
    [ { extra => "chat_send_queue_time 1s;\nchat_send_queue_time 1s;" },
      qr/chat_send_queue_time/ ],
    [ { extra => 'chat_max_inflight 0;' }, qr/chat_max_inflight/ ],
    [ { extra => 'chat_redis_timeout 5999ms;' },
      qr/"chat_redis_timeout" must be between 6s and 1h/ ],
    [ { extra => 'chat_redis_timeout 61m;' },
      qr/"chat_redis_timeout" must be between 6s and 1h/ ],
    [ { extra => 'chat_redis_timeout abc;' }, qr/chat_redis_timeout/ ],
    [ { extra => 'chat_poll_batch 0;' }, qr/chat_poll_batch/ ],
    [ { extra => 'chat_poll_batch 100001;' }, qr/chat_poll_batch/ ],
    [ { extra => 'chat_max_inflight 100001;' }, qr/chat_max_inflight/ ],
    [ { redis => 'chat_redis localhost:6379;' }, qr/chat_redis/ ],
    [ { redis => 'chat_redis 127.0.0.1:99999;' }, qr/chat_redis/ ],
    [ { redis => 'chat_redis 127.0.0.1:6379 bogus;' }, qr/chat_redis/ ],
    [ { redis => '' }, qr/chat_redis/ ],
    [ { redis => 'chat_redis 127.0.0.1:7000 127.0.0.1:7001;' },
      qr/"chat_redis" takes several addresses only with "cluster=on"/ ],
    [ { redis => 'chat_redis 127.0.0.1:7000 localhost:7001 cluster=on;' },
      qr/chat_redis/ ],
    [ { redis => 'chat_redis 127.0.0.1:7000 cluster=on "prefix={c}:";' },
      qr/"chat_redis" with "cluster=on" takes no '\{'/ ],
    [ { redis => 'chat_redis cluster=on;' }, qr/chat_redis/ ],
    [ { pg => 'chat_postgres "dbname=chat" pool=0;' }, qr/chat_postgres/ ],
    [ { pg => 'chat_postgres "dbname=chat" lots=1;' }, qr/chat_postgres/ ],
    [ { pg => '' }, qr/chat_postgres/ ],
    # workers never resolve host names (libpq would block them)
    [ { pg => 'chat_postgres "host=db.example port=5432 dbname=chat";' },
      qr/"chat_postgres" has the host name "db\.example".*IP address/ ],
    [ { pg => 'chat_postgres "host=localhost dbname=chat";' },
      qr/"chat_postgres" has the host name "localhost"/ ],
    [ { pg => 'chat_postgres "host=127.0.0.1,db2.example dbname=chat";' },
      qr/"chat_postgres" has the host name "db2\.example"/ ],
    [ { pg => 'chat_postgres "postgresql://db.example:5432/chat";' },
      qr/"chat_postgres" has the host name "db\.example"/ ],
    [ { pg => 'chat_postgres "host=a.example,b.example '
              . 'hostaddr=127.0.0.1, dbname=chat";' },
      qr/"chat_postgres" has the host name "b\.example"/ ],
    [ { pg => 'chat_postgres "service=chat";' },
      qr/"chat_postgres" does not take service=/ ],
    [ { pg => 'chat_postgres "host=127.0.0.1 bogus=1";' },
      qr/"chat_postgres" has an invalid conninfo/ ],
    [ { secret => "chat_jwt_secret_file $dir/none;" },
      qr/chat_jwt_secret_file/ ],
    [ { secret => "chat_jwt_secret_file $dir/short.secret;" },
      qr/chat_jwt_secret_file.*32 bytes/ ],
    [ { secret => '' }, qr/chat_jwt_secret_file/ ],
    [ { loc => 'chat_websocket on;' }, qr/chat_websocket/ ],
    # the largest event must fit chat_output_limit (docs/security.md)
    [ { extra => 'chat_max_participants 10000;' },
      qr/chat_output_limit.*chat_max_participants.*chatUpdate/ ],
    [ { extra => 'chat_max_participants 4000;' },
      qr/chat_output_limit.*chat_max_participants/ ],
    [ { extra => 'chat_output_limit 64k;' },
      qr/chat_output_limit.*chat_max_message_size.*newMessage/ ],
    [ { extra => 'chat_output_limit 16k;' },
      qr/chat_output_limit.*chat_max_message_size/ ],
    [ { extra => "chat_max_frame_size 220k; chat_max_message_size 100k; "
          . "chat_media_store local $dir/media;" },
      qr/chat_output_limit.*chat_max_message_size.*10 attachments/ ],
    [ { loc => 'chat_admin_token everyone;' }, qr/chat_admin_token/ ],
    [ { loc => 'chat_admin_token loopback any;' }, qr/chat_admin_token/ ],
);

# numeric hosts, sockets and hostaddr= pass
for my $pg ('host=::1 port=5432 dbname=chat',
            'host=/var/run/postgresql dbname=chat',
            'host=db.example hostaddr=127.0.0.1 dbname=chat',
            'host=127.0.0.1,/tmp,::1 dbname=chat',
            'postgresql://127.0.0.1:5432/chat',
            'postgresql://[::1]:5432/chat',
            'dbname=chat', 'chat')
{
    my ($rc, $out) = nginx_t(conf_with(pg => "chat_postgres \"$pg\";"));
    is $rc, 0, "nginx -t passes chat_postgres \"$pg\"" or diag $out;
}

# the token endpoint is on only where the directive is, and says what for
($rc, $out) = nginx_t(conf_with(loc => 'chat_admin_token;'));
is $rc, 0, 'chat_admin_token passes nginx -t';
like $out, qr/\[warn\].*"chat_admin_token" mints a token for any user.*development/,
    'with a warning: for development';
($rc, $out) = nginx_t(conf_with(loc => 'chat_admin_token any;'));
is $rc, 0, 'chat_admin_token any passes nginx -t';
($rc, $out) = nginx_t(conf_with());
unlike $out, qr/chat_admin_token/, 'no warning without it';

for my $case (@bad) {
    my ($o, $re) = @$case;
    my ($rc, $out) = nginx_t(conf_with(%$o));
    my $what = join ' ', map { "$_=$o->{$_}" } sort keys %$o;
    isnt $rc, 0, "nginx -t refuses: $what";
    like $out, $re, "and names the directive: $what";
}

# ... and these fit
my @good = (
    'chat_max_participants 3800;',
    'chat_max_participants 10000; chat_output_limit 1m;',
    'chat_output_limit 16k; chat_max_frame_size 12k; '
        . 'chat_max_message_size 8k;',
    'chat_max_frame_size 220k; chat_max_message_size 100k;',
    'chat_max_frame_size 220k; chat_max_message_size 100k; '
        . "chat_output_limit 300k; chat_media_store local $dir/media;",
    'chat_max_fragments 1; chat_order_hold_limit 0;',
    'chat_redis_timeout 6s; chat_poll_batch 1;',
    'chat_redis_timeout 1h; chat_poll_batch 100000;',
);

for my $extra (@good) {
    my ($rc, $out) = nginx_t(conf_with(extra => $extra));
    is $rc, 0, "nginx -t accepts: $extra" or diag $out;
}

$t->done_testing;
