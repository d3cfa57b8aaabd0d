package ChatTest::WS;

# ChatTest::WS: a raw RFC 6455 WebSocket client for the tests, over one
# non-blocking socket waited on with IO::Select and deadlines (never sleeps
# to synchronise).  It encodes frames itself so tests can send hostile ones
# (unmasked, RSV bits, reserved opcodes, lying lengths, split writes), checks
# the server's frames (unmasked, RSV clear) and the handshake's
# Sec-WebSocket-Accept, answers server PINGs and echoes server Closes unless
# told not to, and queues events that arrive while a command waits for its
# response.
#
#   my $ws = ChatTest::WS->connect($t, user => 'alice', device => 'phone');
#   my $r = $ws->cmd('ping');                 # {type=>'response', ...}
#   $ws->send_frame(OP_TEXT, $bytes, fin => 0, masked => 0, rsv => 4);
#   my ($code, $eof) = $ws->wait_closed(5);
#
# Frames returned by recv_frame are hashes: opcode, fin, rsv, masked,
# payload (bytes), and for Close frames code and reason.

use strict;
use warnings;

use Digest::SHA qw(sha1);
use Errno ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Socket qw(SOL_SOCKET SO_RCVBUF SO_SNDBUF IPPROTO_TCP TCP_NODELAY
    inet_aton pack_sockaddr_in);
use Time::HiRes qw(time sleep);

use Exporter 'import';
our @EXPORT_OK = qw(OP_CONT OP_TEXT OP_BINARY OP_CLOSE OP_PING OP_PONG);
our %EXPORT_TAGS = (op => \@EXPORT_OK);

use constant {
    OP_CONT   => 0x0,
    OP_TEXT   => 0x1,
    OP_BINARY => 0x2,
    OP_CLOSE  => 0x8,
    OP_PING   => 0x9,
    OP_PONG   => 0xA,
};

use constant GUID => '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
my $conn_count = 0;

$SIG{PIPE} = 'IGNORE';

sub accept_for {
    my ($key) = @_;
    return encode_base64(sha1($key . GUID), '');
}

sub random_bytes {
    my ($n) = @_;
    return join '', map { chr int rand 256 } 1 .. $n;
}

# ChatTest::WS->connect($t, %o): the client, or dies "HTTP <status>\n"
sub connect {
    my ($class, $t, %o) = @_;
    my ($ws, $status, $h, $body) = $class->try_connect($t, %o);
    return $ws if $ws;
    die 'HTTP ' . ($status // 'none') . "\n";
}

# ($client or undef, $status, \%headers, $body)
# %o: user (default: a new "userN" per connection), device (default
#     "phone"), token (given: used as is; undef: no credentials),
#     auth => 'header' (default) | 'query', query => extra query string,
#     path (default /chat), key, version, method, headers => [name => value]
#     (replace defaults of the same name; value undef drops the header),
#     rcvbuf, sndbuf, timeout (default 5), extra => bytes sent right after
#     the handshake in the same write, port
sub try_connect {
    my ($class, $t, %o) = @_;
    my $timeout = $o{timeout} // 5;
    my $deadline = time + $timeout;

    # by default every connection is a different user, so that none
    # replaces another (same device) or hits chat_max_devices
    $o{user} //= "user" . ++$conn_count;
    $o{device} //= "phone";
    my $token = exists $o{token} ? $o{token}
        : $t->token(user => $o{user} // 'alice',
            device => $o{device} // 'phone');
    my $auth = $o{auth} // 'header';

    my $path = $o{path} // '/chat';
    my @q;
    push @q, "access_token=$token" if defined $token && $auth eq 'query';
    push @q, $o{query} if defined $o{query};
    $path .= '?' . join('&', @q) if @q;

    my $key = exists $o{key} ? $o{key} : encode_base64(random_bytes(16), '');
    my @h = (
        Host => "127.0.0.1:" . ($o{port} // $t->port),
        Upgrade => 'websocket',
        Connection => 'Upgrade',
        'Sec-WebSocket-Key' => $key,
        'Sec-WebSocket-Version' => $o{version} // 13,
    );
    push @h, Authorization => "Bearer $token"
        if defined $token && $auth eq 'header';
    my @extra = @{ $o{headers} // [] };
    for (my $i = 0; $i < @extra; $i += 2) {
        my ($n, $v) = @extra[$i, $i + 1];
        my $found;
        for (my $j = 0; $j < @h; $j += 2) {
            next unless lc $h[$j] eq lc $n;
            $h[$j + 1] = $v;
            $found = 1;
        }
        push @h, $n, $v unless $found;
    }
    my $req = ($o{method} // 'GET') . " $path HTTP/1.1\r\n";
    for (my $i = 0; $i < @h; $i += 2) {
        $req .= "$h[$i]: $h[$i + 1]\r\n" if defined $h[$i + 1];
    }
    $req .= "\r\n";
    $req .= $o{extra} if defined $o{extra};

    my $s = IO::Socket::INET->new(Proto => 'tcp', Type => SOCK_STREAM)
        or die "socket: $!";
    $s->setsockopt(SOL_SOCKET, SO_RCVBUF, $o{rcvbuf}) or die "rcvbuf: $!"
        if $o{rcvbuf};
    $s->setsockopt(SOL_SOCKET, SO_SNDBUF, $o{sndbuf}) or die "sndbuf: $!"
        if $o{sndbuf};
    $s->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
    $s->connect(pack_sockaddr_in($o{port} // $t->port,
        inet_aton('127.0.0.1'))) or die "connect: $!";
    $s->blocking(0);

    my $self = bless {
        t => $t,
        sock => $s,
        sel => IO::Select->new($s),
        buf => '',
        timeout => $timeout,
        auto_pong => 1,
        auto_close => 1,
        seq => 0,
        events => [],
        pings => [],          # payloads of server PINGs seen
        pongs => [],          # payloads of PONGs seen (not yet waited for)
        violations => [],     # server frames breaking RFC 6455
        eof => 0,
        user => $o{user} // 'alice',
        device => $o{device} // 'phone',
        key => $key,
    }, $class;

    $self->write_bytes($req, $deadline) or die "handshake write: $!";

    # the response header
    my $hlen;
    while (1) {
        my $i = index $self->{buf}, "\r\n\r\n";
        if ($i >= 0) {
            $hlen = $i + 4;
            last;
        }
        last unless $self->read_some($deadline);
    }
    if (!defined $hlen) {
        return (undef, undef, {}, $self->{buf});
    }
    my $head = substr $self->{buf}, 0, $hlen, '';
    my @lines = split /\r\n/, $head;
    my ($status) = (shift @lines) =~ m{^HTTP/1\.1 (\d{3}) }
        or return (undef, undef, {}, $head);
    my %rh;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $rh{$k} = exists $rh{$k} ? "$rh{$k}, $v" : $v;
    }
    $self->{status} = $status;
    $self->{headers} = \%rh;

    if ($status != 101) {
        # the body, when there is one, bounded
        my $len = $rh{'content-length'};
        while (!$self->{eof}
            && (!defined $len || length $self->{buf} < $len))
        {
            last unless $self->read_some(time + 1 < $deadline
                ? time + 1 : $deadline);
        }
        CORE::close $s;
        return (undef, $status, \%rh, $self->{buf});
    }

    my $want = accept_for($key);
    die "bad Sec-WebSocket-Accept: got '"
        . ($rh{'sec-websocket-accept'} // '') . "', want '$want'\n"
        unless ($rh{'sec-websocket-accept'} // '') eq $want;
    die "101 without 'Upgrade: websocket'\n"
        unless ($rh{upgrade} // '') =~ /^websocket$/i;
    die "101 without 'Connection: upgrade'\n"
        unless ($rh{connection} // '') =~ /\bupgrade\b/i;

    return ($self, $status, \%rh, '');
}

sub status { $_[0]{status} }
sub headers { $_[0]{headers} }
sub socket { $_[0]{sock} }
sub eof { $_[0]{eof} }
sub close_code { $_[0]{close_code} }
sub close_reason { $_[0]{close_reason} }
sub violations { @{ $_[0]{violations} } }
sub pings { @{ $_[0]{pings} } }

sub auto_pong {
    my ($self, $on) = @_;
    $self->{auto_pong} = $on if defined $on;
    return $self->{auto_pong};
}

sub auto_close {
    my ($self, $on) = @_;
    $self->{auto_close} = $on if defined $on;
    return $self->{auto_close};
}

# --------------------------------------------------------------------------
# socket I/O

# one read, waiting until $deadline; 0 on timeout or end of stream
sub read_some {
    my ($self, $deadline) = @_;
    return 0 if $self->{eof};
    while (1) {
        my $left = $deadline - time;
        return 0 if $left <= 0;
        next unless $self->{sel}->can_read($left);
        my $n = sysread $self->{sock}, $self->{buf}, 65536,
            length $self->{buf};
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            $self->{reset} = 1 if $!{ECONNRESET};
            $self->{read_error} = "$!";
            $self->{eof} = 1;
            return 0;
        }
        if ($n == 0) {
            $self->{eof} = 1;
            return 0;
        }
        return $n;
    }
}

# write all bytes before the deadline; 1 on success, 0 on failure (the
# server closed, or would not read)
sub write_bytes {
    my ($self, $data, $deadline) = @_;
    return $self->write_some($data, $deadline) == length $data ? 1 : 0;
}

# how many bytes of $data went out before the deadline or an error
sub write_some {
    my ($self, $data, $deadline) = @_;
    $deadline //= time + $self->{timeout};
    my $off = 0;
    while ($off < length $data) {
        my $left = $deadline - time;
        last if $left <= 0;
        next unless $self->{sel}->can_write($left);
        my $n = syswrite $self->{sock}, $data, length($data) - $off, $off;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            $self->{write_error} = "$!";
            last;
        }
        $off += $n;
    }
    return $off;
}

sub write_error { $_[0]{write_error} }

# --------------------------------------------------------------------------
# frames

# encode_frame($opcode, $payload, fin => 1, rsv => 0..7, masked => 1,
#     mask => 4 bytes, length => declared length (default: the real one),
#     len_bytes => 0|2|8 (force the length encoding))
sub encode_frame {
    my ($opcode, $payload, %o) = @_;
    $payload //= '';
    utf8::encode($payload) if utf8::is_utf8($payload);
    my $fin = $o{fin} // 1;
    my $masked = $o{masked} // 1;
    my $rsv = $o{rsv} // 0;
    my $len = $o{length} // length $payload;
    my $lb = $o{len_bytes}
        // ($len < 126 ? 0 : $len < 65536 ? 2 : 8);

    my $f = chr(($fin ? 0x80 : 0) | (($rsv & 7) << 4) | ($opcode & 0xf));
    my $m = $masked ? 0x80 : 0;
    if ($lb == 0) {
        $f .= chr($m | $len);
    } elsif ($lb == 2) {
        $f .= chr($m | 126) . pack('n', $len);
    } else {
        $f .= chr($m | 127) . pack('Q>', $len);
    }
    if ($masked) {
        my $key = $o{mask} // random_bytes(4);
        $f .= $key;
        $payload = mask_bytes($payload, $key);
    }
    return $f . $payload;
}

sub mask_bytes {
    my ($data, $key) = @_;
    my $l = length $data;
    return '' unless $l;
    my $k = substr($key x (int($l / 4) + 1), 0, $l);
    return $data ^ $k;
}

# send one frame; options as encode_frame, plus split => [n, ...] to send
# it in pieces of those sizes (the rest in one piece), pausing
# split_delay seconds (default 0.02) between them so they leave in
# separate segments.  Returns 1 when everything was written.
sub send_frame {
    my ($self, $opcode, $payload, %o) = @_;
    my $bytes = encode_frame($opcode, $payload, %o);
    return $self->send_raw($bytes, %o);
}

sub send_raw {
    my ($self, $bytes, %o) = @_;
    my $deadline = time + ($o{timeout} // $self->{timeout});
    if ($o{split}) {
        my @parts;
        my $rest = $bytes;
        for my $n (@{ $o{split} }) {
            last unless length $rest;
            push @parts, substr($rest, 0, $n, '');
        }
        push @parts, $rest if length $rest;
        for my $i (0 .. $#parts) {
            $self->write_bytes($parts[$i], $deadline) or return 0;
            sleep($o{split_delay} // 0.02) if $i < $#parts;
        }
        return 1;
    }
    return $self->write_bytes($bytes, $deadline);
}

# a text message: a Perl character string is sent UTF-8 encoded, a byte
# string as is (to send invalid UTF-8)
sub send_text {
    my ($self, $text, %o) = @_;
    return $self->send_frame(OP_TEXT, $text, %o);
}

sub send_json {
    my ($self, $obj, %o) = @_;
    return $self->send_frame(OP_TEXT, $JSON->encode($obj), %o);
}

sub ping {
    my ($self, $payload) = @_;
    return $self->send_frame(OP_PING, $payload // '');
}

# parse one server frame out of the buffer, or undef if incomplete
sub parse_frame {
    my ($self) = @_;
    my $b = \$self->{buf};
    return undef if length $$b < 2;
    my ($b1, $b2) = unpack 'CC', $$b;
    my $masked = $b2 & 0x80;
    my $len = $b2 & 0x7f;
    my $off = 2;
    if ($len == 126) {
        return undef if length $$b < 4;
        $len = unpack 'n', substr $$b, 2, 2;
        $off = 4;
    } elsif ($len == 127) {
        return undef if length $$b < 10;
        $len = unpack 'Q>', substr $$b, 2, 8;
        $off = 10;
    }
    my $key;
    if ($masked) {
        return undef if length $$b < $off + 4;
        $key = substr $$b, $off, 4;
        $off += 4;
    }
    return undef if length $$b < $off + $len;
    substr $$b, 0, $off, '';
    my $payload = substr $$b, 0, $len, '';
    $payload = mask_bytes($payload, $key) if $masked;

    my $f = {
        fin => ($b1 & 0x80) ? 1 : 0,
        rsv => ($b1 >> 4) & 7,
        opcode => $b1 & 0xf,
        masked => $masked ? 1 : 0,
        payload => $payload,
    };
    push @{ $self->{violations} }, 'masked server frame' if $masked;
    push @{ $self->{violations} }, 'RSV bits in server frame' if $f->{rsv};
    if ($f->{opcode} >= 8) {
        push @{ $self->{violations} }, 'fragmented control frame'
            unless $f->{fin};
        push @{ $self->{violations} }, 'control frame over 125 bytes'
            if $len > 125;
    }
    if ($f->{opcode} == OP_CLOSE) {
        if (length $payload >= 2) {
            $f->{code} = unpack 'n', $payload;
            $f->{reason} = substr $payload, 2;
        } else {
            $f->{code} = 1005;          # no status code present
            $f->{reason} = '';
            push @{ $self->{violations} }, 'one-byte close payload'
                if length $payload == 1;
        }
    }
    return $f;
}

# the next frame from the server, or undef on timeout / end of stream.
# Server PINGs are answered and not returned (unless auto_pong(0)); a
# server Close is echoed (unless auto_close(0)) and returned.
sub recv_frame {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    while (1) {
        while (my $f = $self->parse_frame) {
            if ($f->{opcode} == OP_PING) {
                push @{ $self->{pings} }, $f->{payload};
                if ($self->{auto_pong}) {
                    $self->send_frame(OP_PONG, $f->{payload})
                        unless $self->{close_sent};
                    next;
                }
            }
            if ($f->{opcode} == OP_CLOSE) {
                $self->{close_received}++;
                $self->{close_code} //= $f->{code};
                $self->{close_reason} //= $f->{reason};
                if ($self->{auto_close} && !$self->{close_sent}) {
                    $self->{close_sent} = 1;
                    $self->send_frame(OP_CLOSE,
                        $f->{code} == 1005 ? '' : pack('n', $f->{code}));
                }
            }
            return $f;
        }
        return undef unless $self->read_some($deadline);
    }
}

# the next complete data message {opcode, payload}, assembling fragments;
# PONGs are recorded, a Close ends it (undef)
sub recv_message {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    my $msg;
    while (1) {
        my $f = $self->recv_frame($deadline - time) or return undef;
        my $op = $f->{opcode};
        if ($op == OP_PONG) {
            push @{ $self->{pongs} }, $f->{payload};
            next;
        }
        next if $op == OP_PING;
        return undef if $op == OP_CLOSE;
        if ($op == OP_CONT) {
            if (!$msg) {
                push @{ $self->{violations} }, 'continuation without start';
                next;
            }
            $msg->{payload} .= $f->{payload};
        } else {
            push @{ $self->{violations} }, 'new message inside a fragmented'
                . ' one' if $msg;
            $msg = { opcode => $op, payload => $f->{payload} };
        }
        return $msg if $f->{fin};
    }
}

# the next JSON message (queued events first), decoded; undef on timeout
# or close.  A text message that is not JSON comes back as {_raw => ...}.
sub recv_json {
    my ($self, $timeout) = @_;
    return shift @{ $self->{events} } if @{ $self->{events} };
    return $self->read_json($timeout);
}

sub read_json {
    my ($self, $timeout) = @_;
    my $m = $self->recv_message($timeout) or return undef;
    if ($m->{opcode} != OP_TEXT) {
        push @{ $self->{violations} }, "data message with opcode"
            . " $m->{opcode}";
        return { _raw => $m->{payload}, _opcode => $m->{opcode} };
    }
    my $obj = eval { $JSON->decode($m->{payload}) };
    return $obj // { _raw => $m->{payload}, _error => $@ };
}

sub next_id {
    my ($self) = @_;
    return 'c' . ++$self->{seq};
}

# cmd($type, %fields): send {"type":..,"id":<fresh>,...} and return the
# response with that id (undef on timeout or close); other messages that
# arrive meanwhile are queued for next_event/recv_json.  Fields may include
# id => to choose it, and _timeout => seconds.
sub cmd {
    my ($self, $type, %fields) = @_;
    my $timeout = delete $fields{_timeout};
    my $id = exists $fields{id} ? $fields{id} : $self->next_id;
    $fields{id} = $id;
    $fields{type} = $type;
    $self->send_json(\%fields) or return undef;
    return $self->response($id, $timeout);
}

# wait for the response to $id, queueing everything else
sub response {
    my ($self, $id, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    for my $i (0 .. $#{ $self->{events} }) {
        my $e = $self->{events}[$i];
        if (($e->{type} // '') eq 'response' && defined $e->{id}
            && $e->{id} eq $id)
        {
            splice @{ $self->{events} }, $i, 1;
            return $e;
        }
    }
    while (1) {
        my $m = $self->read_json($deadline - time) or return undef;
        return $m if ($m->{type} // '') eq 'response'
            && defined $m->{id} && $m->{id} eq $id;
        push @{ $self->{events} }, $m;
    }
}

# send_json_burst(@objects): each object as one text frame, all frames in
# one write, so that the server reads them in one go; 1 on success
sub send_json_burst {
    my ($self, @objs) = @_;
    return $self->write_bytes(join '',
        map { encode_frame(OP_TEXT, $JSON->encode($_)) } @objs);
}

# responses(\@ids, $timeout): the responses to @ids in the order they came
# (fewer if the timeout passed first); other messages are queued for
# next_event
sub responses {
    my ($self, $ids, $timeout) = @_;
    my %want = map { ($_ => 1) } @$ids;
    my $mine = sub { my $m = shift; ($m->{type} // '') eq 'response'
        && delete $want{ $m->{id} // '' } };
    my (@got, @other);
    for my $e (@{ $self->{events} }) {
        if ($mine->($e)) {
            push @got, $e;
        } else {
            push @other, $e;
        }
    }
    $self->{events} = \@other;
    my $deadline = time + ($timeout // $self->{timeout});
    while (%want) {
        my $m = $self->read_json($deadline - time) or last;
        if ($mine->($m)) {
            push @got, $m;
        } else {
            push @{ $self->{events} }, $m;
        }
    }
    return @got;
}

# next_event($type, $timeout): the first queued or arriving message of that
# type (any non-response message when $type is undef); others are queued
sub next_event {
    my ($self, $type, $timeout) = @_;
    my $match = sub {
        my $t = $_[0]{type} // '';
        return defined $type ? $t eq $type : $t ne 'response';
    };
    for my $i (0 .. $#{ $self->{events} }) {
        return splice @{ $self->{events} }, $i, 1
            if $match->($self->{events}[$i]);
    }
    my $deadline = time + ($timeout // $self->{timeout});
    while (1) {
        my $m = $self->read_json($deadline - time) or return undef;
        return $m if $match->($m);
        push @{ $self->{events} }, $m;
    }
}

sub events { @{ $_[0]{events} } }

# chat_seqs($chat, $n, $timeout): the seqs of the next $n newMessage events
# of $chat (other chats' are skipped), each acked; fewer when $timeout
# (default 5 s) passes without one
sub chat_seqs {
    my ($self, $chat, $n, $timeout) = @_;
    my @s;
    while (@s < $n) {
        my $e = $self->next_event('newMessage', $timeout // 5) or last;
        next unless $e->{chatId} eq $chat;
        push @s, $e->{seq};
        $self->send_json({ type => 'ack', eventIds => [ $e->{eventId} ] });
    }
    return \@s;
}

# wait for a PONG; returns its payload or undef
sub wait_pong {
    my ($self, $timeout) = @_;
    return shift @{ $self->{pongs} } if @{ $self->{pongs} };
    my $deadline = time + ($timeout // $self->{timeout});
    while (1) {
        my $f = $self->recv_frame($deadline - time) or return undef;
        return $f->{payload} if $f->{opcode} == OP_PONG;
        return undef if $f->{opcode} == OP_CLOSE;
        if ($f->{opcode} == OP_TEXT || $f->{opcode} == OP_CONT) {
            # keep data for later readers: put the frame back as an event
            my $obj = eval { $JSON->decode($f->{payload}) };
            push @{ $self->{events} }, $obj // { _raw => $f->{payload} };
        }
    }
}

# (close code or undef, 1 if the TCP connection ended) within $timeout:
# reads (and queues) until the server's Close and end of stream
sub wait_closed {
    my ($self, $timeout) = @_;
    my $deadline = time + ($timeout // $self->{timeout});
    while (!$self->{eof}) {
        my $f = $self->recv_frame($deadline - time);
        if (!$f) {
            last if $self->{eof} || time >= $deadline;
            next;
        }
        if ($f->{opcode} == OP_TEXT) {
            my $obj = eval { $JSON->decode($f->{payload}) };
            push @{ $self->{events} }, $obj // { _raw => $f->{payload} };
        }
    }
    return ($self->{close_code}, $self->{eof});
}

# close($code, $reason): send a Close, wait for the server's; returns its
# code (undef when none came)
sub close {
    my ($self, $code, $reason, $timeout) = @_;
    my $payload = defined $code ? pack('n', $code) . ($reason // '') : '';
    $self->{close_sent} = 1;
    $self->send_frame(OP_CLOSE, $payload);
    my ($c) = $self->wait_closed($timeout);
    return $c;
}

# drop the TCP connection without a Close
sub disconnect {
    my ($self) = @_;
    CORE::close $self->{sock} if $self->{sock};
    $self->{eof} = 1;
}

1;
