# `cmake --install` into a scratch DESTDIR puts the binary, the systemd unit and the config
# in place, and the installed binary accepts the installed config. Run by ctest with
# -DBUILD_DIR=<build tree> -DSCRATCH=<empty dir>.
file(REMOVE_RECURSE ${SCRATCH})
set(ENV{DESTDIR} ${SCRATCH})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix /usr/local
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed:\n${out}")
endif()
foreach(f usr/local/bin/sandboxd usr/local/lib/systemd/system/sandboxd.service
          etc/sandboxd/sandboxd.yaml usr/local/share/doc/sandboxd/sandboxd.example.yaml)
  if(NOT EXISTS ${SCRATCH}/${f})
    message(FATAL_ERROR "not installed: ${f}\n${out}")
  endif()
endforeach()
file(READ ${SCRATCH}/usr/local/lib/systemd/system/sandboxd.service unit)
foreach(line "ExecStart=/usr/local/bin/sandboxd serve -c /etc/sandboxd/sandboxd.yaml"
             "ExecReload=/bin/kill -HUP $MAINPID" "WantedBy=multi-user.target")
  string(FIND "${unit}" "${line}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the unit lacks: ${line}\n${unit}")
  endif()
endforeach()
execute_process(COMMAND ${SCRATCH}/usr/local/bin/sandboxd check-config -c ${SCRATCH}/etc/sandboxd/sandboxd.yaml
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the installed config does not pass check-config:\n${out}")
endif()
# A second install keeps the operator's edited config.
file(APPEND ${SCRATCH}/etc/sandboxd/sandboxd.yaml "# edited by the operator\n")
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix /usr/local
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
file(READ ${SCRATCH}/etc/sandboxd/sandboxd.yaml conf)
string(FIND "${conf}" "# edited by the operator" at)
if(at EQUAL -1)
  message(FATAL_ERROR "a second install overwrote /etc/sandboxd/sandboxd.yaml")
endif()
file(REMOVE_RECURSE ${SCRATCH})
