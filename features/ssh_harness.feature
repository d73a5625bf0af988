@ssh
Feature: the SSH test harness
  The apply scenarios run against real OpenSSH servers on loopback addresses.

  Scenario: an SSH host accepts the test key and is in known_hosts
    Given an SSH host "n1" on 127.0.0.2
    When I run "ssh -i ${SSH_KEY} -o UserKnownHostsFile=${KNOWN_HOSTS} -o StrictHostKeyChecking=yes -o BatchMode=yes -p ${N1_PORT} ${SSH_USER}@${N1_HOST} echo hello-from-n1"
    Then the command succeeds
    And stdout contains "hello-from-n1"

  Scenario: a key the host does not know is refused
    Given an SSH host "n1" on 127.0.0.3
    And an SSH key that no host accepts
    When I run "ssh -i ${WRONG_KEY} -o UserKnownHostsFile=${KNOWN_HOSTS} -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -p ${N1_PORT} ${SSH_USER}@${N1_HOST} true"
    Then the command fails
    And stderr contains "Permission denied"
