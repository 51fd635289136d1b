#!/bin/bash
#
# devstack/plugin.sh - DevStack plugin of freezer-dr.
#
# Enable it in local.conf:
#
#     [[local|localrc]]
#     enable_plugin freezer-dr <git url of freezer-dr> [branch]
#
# ``stack.sh`` / ``unstack.sh`` / ``clean.sh`` call the entry points in
# this order (service ``fdr-engine``):
#
# - stack install      install_freezer_dr
# - stack post-config  configure_freezer_dr
# - stack extra        start_freezer_dr
# - unstack            stop_freezer_dr
# - clean              cleanup_freezer_dr

# Save trace setting
_XTRACE_FREEZER_DR=$(set +o | grep xtrace)
set -o xtrace

FREEZER_DR_BIN_DIR=$(get_python_exec_prefix)


# Functions
# ---------

# freezer_dr_backend_url() - the tooz URL of the etcd the replica uses
function freezer_dr_backend_url {
    if [[ -n "$FREEZER_DR_BACKEND_URL" ]]; then
        echo "$FREEZER_DR_BACKEND_URL"
    else
        echo "etcd3+http://${ETCD_HOST:-$SERVICE_HOST}:${ETCD_PORT:-2379}"
    fi
}

# install_freezer_dr() - install the package from the plugin's checkout
function install_freezer_dr {
    if [[ -z "$FREEZER_DR_BACKEND_URL" ]] && ! is_service_enabled etcd3; then
        die $LINENO "freezer-dr needs etcd: enable the etcd3 service" \
            "or set FREEZER_DR_BACKEND_URL"
    fi
    setup_develop "$FREEZER_DR_DIR"
}

# write_freezer_dr_inventory() - a fencing inventory for the devstack
# compute hosts, with the manual fencing driver: devstack has no BMC, so an
# operator confirms the fence with ``freezer-dr-manage host fenced HOST``.
# An existing inventory (an operator's own) is left alone.
function write_freezer_dr_inventory {
    if [[ -e "$FREEZER_DR_INVENTORY" ]]; then
        return
    fi
    local host
    {
        echo "# Fencing inventory written by the freezer-dr devstack plugin."
        echo "# Format: doc/source/inventory.rst. Add an ipmi or libvirt level"
        echo "# before the manual one to fence without an operator."
        echo "nodes:"
        for host in $FREEZER_DR_COMPUTE_HOSTS; do
            echo "  ${host}:"
            echo "    fencing:"
            echo "      - driver: manual"
        done
    } > "$FREEZER_DR_INVENTORY"
    chmod 0640 "$FREEZER_DR_INVENTORY"
}

# configure_freezer_dr() - write /etc/freezer-dr/freezer-dr.conf
function configure_freezer_dr {
    sudo install -d -o "$STACK_USER" -m 0750 "$FREEZER_DR_CONF_DIR"

    # (Re)create the configuration from the options in the code, then set
    # what devstack knows.
    rm -f "$FREEZER_DR_CONF"
    "$FREEZER_DR_BIN_DIR/oslo-config-generator" --namespace freezer-dr --namespace oslo.log \
        > "$FREEZER_DR_CONF"

    iniset "$FREEZER_DR_CONF" coordination backend_url "$(freezer_dr_backend_url)"
    iniset "$FREEZER_DR_CONF" coordination cluster "$FREEZER_DR_CLUSTER"

    iniset "$FREEZER_DR_CONF" cloud cloud "$FREEZER_DR_CLOUD"
    iniset "$FREEZER_DR_CONF" cloud clouds_yaml "$FREEZER_DR_CLOUDS_YAML"
    if [[ -n "$REGION_NAME" ]]; then
        iniset "$FREEZER_DR_CONF" cloud region_name "$REGION_NAME"
    fi

    write_freezer_dr_inventory
    iniset "$FREEZER_DR_CONF" fencing inventory "$FREEZER_DR_INVENTORY"

    iniset "$FREEZER_DR_CONF" engine max_failed_percent \
        "$FREEZER_DR_MAX_FAILED_PERCENT"

    iniset "$FREEZER_DR_CONF" notifiers drivers "$FREEZER_DR_NOTIFIERS"

    iniset "$FREEZER_DR_CONF" api bind_host "$FREEZER_DR_API_HOST"
    iniset "$FREEZER_DR_CONF" api bind_port "$FREEZER_DR_API_PORT"

    # oslo.log: debug level and devstack's usual log format.
    iniset "$FREEZER_DR_CONF" DEFAULT debug "$ENABLE_DEBUG_LOG_LEVEL"
    iniset "$FREEZER_DR_CONF" DEFAULT use_syslog "$SYSLOG"
    setup_logging "$FREEZER_DR_CONF"
}

# start_freezer_dr() - start the replica and wait for its HTTP endpoint
function start_freezer_dr {
    run_process fdr-engine \
        "$FREEZER_DR_BIN_DIR/freezer-dr --config-file $FREEZER_DR_CONF"

    echo "Waiting for freezer-dr to answer on /healthz..."
    if ! wait_for_service "$SERVICE_TIMEOUT" \
            "http://$FREEZER_DR_API_HOST:$FREEZER_DR_API_PORT/healthz"; then
        die $LINENO "fdr-engine did not start"
    fi
}

# stop_freezer_dr() - stop the replica (SIGTERM: it releases its lease)
function stop_freezer_dr {
    stop_process fdr-engine
}

# cleanup_freezer_dr() - remove what the plugin wrote
function cleanup_freezer_dr {
    sudo rm -rf "$FREEZER_DR_CONF_DIR"
}


# Dispatcher
# ----------

if is_service_enabled fdr-engine; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing freezer-dr"
        install_freezer_dr

    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring freezer-dr"
        configure_freezer_dr

    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Starting freezer-dr"
        start_freezer_dr
    fi

    if [[ "$1" == "unstack" ]]; then
        stop_freezer_dr
    fi

    if [[ "$1" == "clean" ]]; then
        cleanup_freezer_dr
    fi
fi

# Restore xtrace
$_XTRACE_FREEZER_DR

# Tell emacs to use shell-script-mode
## Local variables:
## mode: shell-script
## End:
