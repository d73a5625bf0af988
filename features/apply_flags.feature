@apply
Feature: apply and destroy refuse a parallelism that would run nothing

  Scenario Outline: -parallelism below 1 is refused before anything runs
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
      }
      """
    When I run "rbee <command> -auto-approve -parallelism <n>"
    Then the exit code is 1
    And stderr contains "-parallelism must be at least 1"
    When I run "rbee state list"
    Then output does not contain "locked by"

    Examples:
      | command | n  |
      | apply   | 0  |
      | apply   | -1 |
      | destroy | 0  |
