#!/bin/sh
# Create the secret files docker-compose.yml mounts (deploy/secrets/README.md
# lists them), leaving every file that already exists alone.
#
#   deploy/init-secrets.sh            # into deploy/secrets/
#   deploy/init-secrets.sh DIR        # elsewhere (tests)
#
# Tokens and the Grafana password get random values; robot URLs, signing
# secrets and the SMTP password get placeholders to replace: the stack starts
# with them, and the alerts they carry fail until they are real.
set -eu

dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 0700 "$dir"

random() {
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}

put() { # name value
    if [ -e "$dir/$1" ]; then
        echo "kept    $dir/$1"
        return
    fi
    (umask 022 && printf '%s\n' "$2" >"$dir/$1")
    chmod 0644 "$dir/$1"  # read by the containers' own users, see README.md
    echo "created $dir/$1"
}

put alertbridge_token "$(random)"
put grafana_admin_password "$(random)"
put ops_webhook_token "$(random)"
put dingtalk_url "https://oapi.dingtalk.com/robot/send?access_token=CHANGE-ME"
put dingtalk_secret "CHANGE-ME"
put feishu_url "https://open.feishu.cn/open-apis/bot/v2/hook/CHANGE-ME"
put feishu_secret "CHANGE-ME"
put smtp_password "CHANGE-ME"
put slack_webhook_url "https://hooks.slack.com/services/CHANGE/ME/CHANGE-ME"
