# shellcheck shell=bash
# The server pod's workload: nginx (a 100-byte body for request/response, 1 MiB for the path
# check) and an iperf3 server, in netns $NS_SRV and cgroup $CG_SRV. /bench-peer answers with
# what nginx saw of the request (the peer address, x-request-id, x-forwarded-for): the L7
# scenarios' evidence that a proxy, not the client pod, talked to nginx. No access log: it
# would cost every request.

NGINX_WORKERS=${NGINX_WORKERS:-2}

server_up() {
	local d="$STATE/nginx" body
	mkdir -p "$d"/{logs,tmp} "$STATE/www"
	chmod 755 "$d" "$STATE/www"
	printf '%099d\n' 0 | tr 0 x >"$STATE/www/100b"
	head -c 1048576 /dev/urandom >"$STATE/www/1m"
	chmod 644 "$STATE/www/100b" "$STATE/www/1m"
	cat >"$d/nginx.conf" <<CONF
worker_processes ${NGINX_WORKERS};
worker_rlimit_nofile 65536;
pid ${d}/nginx.pid;
error_log ${d}/logs/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=64 inactive=600s;
    open_file_cache_valid 600s;
    client_body_temp_path ${d}/tmp/body;
    proxy_temp_path ${d}/tmp/proxy;
    fastcgi_temp_path ${d}/tmp/fastcgi;
    uwsgi_temp_path ${d}/tmp/uwsgi;
    scgi_temp_path ${d}/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen ${HTTP_PORT} reuseport backlog=4096;
        root ${STATE}/www;
        location / { }
        location = /bench-peer {
            default_type text/plain;
            return 200 "peer=\$remote_addr x-request-id=\$http_x_request_id x-forwarded-for=\$http_x_forwarded_for\\n";
        }
    }
}
CONF
	start_bg nginx "$NS_SRV" "$CG_SRV" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log" -g 'daemon off;'
	start_bg iperf3-server "$NS_SRV" "$CG_SRV" iperf3 -s -p "$IPERF_PORT"
	wait_listen "$NS_SRV" "$HTTP_PORT" ||
		die "nginx did not start: $(cat "$STATE/log/nginx.log" "$d/logs/error.log" 2>/dev/null)"
	wait_listen "$NS_SRV" "$IPERF_PORT" || die "iperf3 -s did not start: $(cat "$STATE/log/iperf3-server.log")"
	body=$(in_ns "$NS_CLI" curl -sS --max-time 5 "http://$SRV_IP/100b") || die "curl to nginx by pod IP failed"
	[[ ${#body} -eq 99 ]] || die "unexpected body from nginx (${#body} bytes)"
}

server_down() {
	stop_bg iperf3-server
	stop_bg nginx
}
