# SPDX-License-Identifier: Apache-2.0
# What `make install` (cmake --install) puts where. Only the two programs and their files
# (and the Slurm epilog script):
# static libraries and tests stay in the build tree.
include(GNUInstallDirs)
install(TARGETS ocra RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS ocra-agent RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/ocra)
# the Slurm epilog that removes a job's containers on its node (docs/RUNNING.md)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/etc/slurm/ocra-epilog
        DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/ocra)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/data/ DESTINATION ${CMAKE_INSTALL_DATADIR}/ocra/data
        FILES_MATCHING PATTERN "*.json")
install(FILES ${PROJECT_SOURCE_DIR}/docs/ocra.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/etc/completion/ocra.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ocra)
install(FILES ${PROJECT_SOURCE_DIR}/etc/completion/_ocra
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES ${PROJECT_SOURCE_DIR}/etc/completion/ocra.fish
        DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)
install(FILES ${PROJECT_SOURCE_DIR}/etc/prometheus/ocra.rules.yml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/ocra/prometheus)
install(FILES ${PROJECT_SOURCE_DIR}/etc/grafana/ocra.json DESTINATION ${CMAKE_INSTALL_DATADIR}/ocra/grafana)
install(FILES ${PROJECT_SOURCE_DIR}/etc/ocra.yaml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/ocra/examples)
# the contract, and the ABI and bytecode a deployment needs (docs/QUICKSTART.md)
install(FILES ${PROJECT_SOURCE_DIR}/contracts/ModelRegistry.sol
              ${PROJECT_SOURCE_DIR}/contracts/ModelRegistry.abi.json
              ${PROJECT_SOURCE_DIR}/contracts/ModelRegistry.bin
        DESTINATION ${CMAKE_INSTALL_DATADIR}/ocra/contracts)
# etc/ocra.service names /usr/local/bin/ocra; the installed unit names this prefix's binary.
file(READ ${PROJECT_SOURCE_DIR}/etc/ocra.service unit)
string(REPLACE "/usr/local/bin/ocra" "${CMAKE_INSTALL_FULL_BINDIR}/ocra" unit "${unit}")
file(WRITE ${PROJECT_BINARY_DIR}/ocra.service "${unit}")
install(FILES ${PROJECT_BINARY_DIR}/ocra.service DESTINATION lib/systemd/system)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/etc/ocra.service)
